// Light or dark: the system's choice (prefers-color-scheme) unless this browser chose one
// (kept in localStorage). The page reads <html data-theme="light|dark">; app.css holds the
// colours, and the sandboxed output frames are told by postMessage (frame.js).
const KEY = 'tandem-theme'
export const CHOICES = ['system', 'light', 'dark']
const system = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null

export function themeChoice () {
  let stored = null
  try { stored = localStorage.getItem(KEY) } catch { } // storage may be off: the system's
  return CHOICES.includes(stored) ? stored : 'system'
}

// The theme in force: 'light' or 'dark'.
export function resolveTheme (choice, systemDark) {
  return choice === 'system' ? (systemDark ? 'dark' : 'light') : choice
}

export const currentTheme = () => document.documentElement.dataset.theme || 'light'

function apply () {
  const root = document.documentElement
  const choice = themeChoice()
  const theme = resolveTheme(choice, Boolean(system?.matches))
  root.dataset.themeChoice = choice
  if (root.dataset.theme === theme) return
  root.dataset.theme = theme
  for (const frame of document.querySelectorAll('iframe.output-frame')) {
    frame.contentWindow?.postMessage({ tandemTheme: theme }, '*')
  }
  window.dispatchEvent(new CustomEvent('tandem-theme', { detail: theme }))
}

export function setThemeChoice (choice) {
  if (!CHOICES.includes(choice)) return
  try {
    if (choice === 'system') localStorage.removeItem(KEY)
    else localStorage.setItem(KEY, choice)
  } catch { }
  apply()
}

// The next choice for a toggle button: system → light → dark → system.
export const nextChoice = (choice) => CHOICES[(CHOICES.indexOf(choice) + 1) % CHOICES.length]

// Set once when the page loads; follows the system, and other tabs of this browser.
export function startTheme () {
  apply()
  system?.addEventListener('change', apply)
  window.addEventListener('storage', (event) => { if (event.key === KEY || event.key === null) apply() })
}
