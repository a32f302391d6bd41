// The keyboard shortcut help (H in command mode, the "?" button): drawn from the tables the
// key handling reads (commands.js), so it lists every key there is and no other.
import { h } from './api.js'
import { keyLabel, shortcutList } from './commands.js'
import { openDialog } from './dialog.js'

export const isMac = () => /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent)

function table (mode, caption, rows, canEdit, mac) {
  return h('section', { class: 'shortcut-group', 'data-mode': mode },
    h('h3', {}, caption),
    h('table', { class: 'shortcuts' },
      h('tbody', {}, ...rows.map((row) => h('tr', { 'data-key': row.key, class: row.edits && !canEdit ? 'unavailable' : null },
        h('td', {}, h('kbd', {}, keyLabel(row.key, mac))),
        h('td', {}, row.label, row.edits && !canEdit ? h('span', { class: 'muted' }, ' (editors only)') : null))))))
}

export function showShortcuts ({ canEdit, onClose }) {
  const mac = isMac()
  const list = shortcutList()
  return openDialog({ title: 'Keyboard shortcuts', className: 'shortcuts-dialog', testId: 'shortcuts', onClose },
    h('p', { class: 'muted' }, 'Esc leaves a cell\'s editor for command mode; Enter goes back in. Esc closes this.'),
    h('div', { class: 'shortcut-columns' },
      table('command', 'Command mode (a cell selected)', list.command, canEdit, mac),
      h('div', {},
        table('edit', 'Edit mode (typing in a cell)', list.edit, canEdit, mac),
        table('anywhere', 'Anywhere', list.anywhere, canEdit, mac))),
    h('div', { class: 'row end' }, h('button', { onclick: (event) => event.target.closest('dialog').close() }, 'Close')))
}
