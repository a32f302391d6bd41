// Modal dialogs on the native <dialog>: Esc closes them (the browser's), the focus stays
// inside while open, and each is removed from the page once closed.
import { h } from './api.js'

// A dialog with `children`, shown at once; `onClose` runs once when it closes.
export function openDialog ({ title, className = '', testId, onClose }, ...children) {
  const dialog = h('dialog', { class: `card ${className}`.trim(), 'data-testid': testId, 'aria-label': title },
    title ? h('h2', {}, title) : null, ...children)
  document.body.append(dialog)
  dialog.addEventListener('close', () => { dialog.remove(); onClose?.() })
  dialog.showModal()
  return dialog
}

// Asks before doing something that cannot be undone; true when confirmed. Cancel and Esc say
// no. The focus starts on Cancel, so Enter alone is safe.
export function confirmDialog ({ title, message, confirm = 'OK', danger = false, testId = 'confirm' }) {
  return new Promise((resolve) => {
    let answer = false
    const cancel = h('button', { 'data-testid': `${testId}-cancel`, onclick: () => dialog.close() }, 'Cancel')
    const ok = h('button', {
      class: danger ? 'primary danger-fill' : 'primary',
      'data-testid': `${testId}-ok`,
      onclick: () => { answer = true; dialog.close() }
    }, confirm)
    const dialog = openDialog({ title, className: 'confirm', testId, onClose: () => resolve(answer) },
      ...[message].flat().map((line) => h('p', {}, line)),
      h('div', { class: 'row end' }, cancel, ok))
    cancel.focus()
  })
}
