// The command palette (Ctrl+Shift+P, ⌘+Shift+P on a Mac): every command this person may
// run (commands.js), filtered as they type (fuzzysort: Sublime Text's kind of matching),
// ↑/↓ to choose, Enter to run, Esc to close; each shows the keys that also run it.
import fuzzysort from 'fuzzysort'
import { h } from './api.js'
import { commandsFor, keyLabel } from './commands.js'
import { openDialog } from './dialog.js'
import { isMac } from './shortcuts.js'

// The commands matching `query`, best first; all of them, in the registry's order, for none.
export function filterCommands (query, commands) {
  if (!query.trim()) return commands
  return fuzzysort.go(query.trim(), commands, { key: 'label', threshold: 0.2 }).map((result) => result.obj)
}

// Opens the palette over `nb`; the command runs after the palette closed and gave the
// focus back, so a cell command acts on the cell selected before.
export function openPalette (nb) {
  const mac = isMac()
  const commands = commandsFor(nb.canEdit)
  const enabled = (command) => !command.cell || nb.current !== null
  const input = h('input', { type: 'text', class: 'palette-input', placeholder: 'Type a command', 'aria-label': 'Command', role: 'combobox', 'aria-controls': 'palette-list', 'aria-expanded': 'true', autocomplete: 'off', spellcheck: 'false' })
  const list = h('ul', { class: 'palette-list', id: 'palette-list', role: 'listbox' })
  const returnTo = document.activeElement
  let shown = []
  let active = 0
  let chosen = null

  const draw = () => {
    shown = filterCommands(input.value, commands)
    active = Math.max(0, Math.min(active, shown.length - 1))
    list.replaceChildren(...shown.map((command, index) => h('li', {
      role: 'option',
      id: `palette-${command.id}`,
      'data-command': command.id,
      'aria-selected': String(index === active),
      'aria-disabled': String(!enabled(command)),
      class: index === active ? 'active' : null,
      onmousedown: (event) => event.preventDefault(), // keep the focus in the input
      onclick: () => choose(index)
    }, h('span', { class: 'palette-label' }, command.label),
    h('span', { class: 'palette-keys' }, ...command.keys.map((key) => h('kbd', {}, keyLabel(key, mac)))))))
    if (shown.length === 0) list.append(h('li', { class: 'palette-empty muted' }, 'No command matches'))
    input.setAttribute('aria-activedescendant', shown[active] ? `palette-${shown[active].id}` : '')
    list.children[active]?.scrollIntoView({ block: 'nearest' })
  }
  const choose = (index) => {
    const command = shown[index]
    if (!command || !enabled(command)) return
    chosen = command
    dialog.close()
  }
  const dialog = openDialog({
    className: 'palette',
    testId: 'palette',
    onClose: () => {
      if (returnTo instanceof HTMLElement && returnTo.isConnected) returnTo.focus()
      if (chosen) chosen.run(nb, nb.current)
    }
  }, input, list)
  dialog.setAttribute('aria-label', 'Command palette')
  input.addEventListener('input', () => { active = 0; draw() })
  input.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault()
      if (shown.length) active = (active + (event.key === 'ArrowDown' ? 1 : -1) + shown.length) % shown.length
      draw()
    } else if (event.key === 'Enter') {
      event.preventDefault()
      choose(active)
    }
  })
  draw()
  input.focus()
  return dialog
}
