// A code cell's last run as one line ("2.3 s · ann · 14:02", or "Running 12 s · ann"),
// read from its metadata: `execution` is where JupyterLab's "record timing" keeps the ISO
// times, `tandem.run_by` who ran it; the server writes both into the document, so every
// page, and one reloaded mid-run, counts from the same start. Pure: no DOM, no Yjs.

function time (value) {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN
  return Number.isFinite(ms) ? ms : null
}

// When the last run started (ms since the epoch), or null when the cell says nothing.
export function startedAt (metadata) {
  const execution = metadata?.execution
  const start = time(execution?.['iopub.status.busy']) ?? time(execution?.['iopub.execute_input'])
  if (start !== null) return start
  const info = metadata?.executionInfo // written by earlier servers, as Colab does
  return Number.isFinite(info?.timestamp) ? info.timestamp : null
}

// How long the last finished run took (ms), or null.
export function elapsedOf (metadata) {
  const execution = metadata?.execution
  const start = startedAt(metadata)
  const end = time(execution?.['iopub.status.idle']) ?? time(execution?.['shell.execute_reply'])
  if (start !== null && end !== null && end >= start) return end - start
  const info = metadata?.executionInfo
  return Number.isFinite(info?.elapsed) ? info.elapsed : null
}

export function ranBy (metadata) {
  const who = metadata?.tandem?.run_by?.username ?? metadata?.executionInfo?.user?.displayName
  return typeof who === 'string' && who ? who : null
}

// "0.4 s", "2.3 s", "42 s", "3 min 05 s", "1 h 02 min".
export function duration (ms) {
  const seconds = Math.max(0, ms) / 1000
  if (seconds < 10) return `${seconds.toFixed(1)} s`
  if (seconds < 60) return `${Math.floor(seconds)} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, '0')} s`
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`
}

// "14:02" today, "3 Dec 14:02" another day (local time).
export function clock (ms, now = Date.now()) {
  const at = new Date(ms)
  const hhmm = `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`
  if (at.toDateString() === new Date(now).toDateString()) return hhmm
  return `${at.getDate()} ${at.toLocaleString('en', { month: 'short' })} ${hhmm}`
}

// Seconds a running cell has run, counted from the start stored in the document (never
// negative: a browser clock a little behind the server's shows 0).
export function runningFor (metadata, now = Date.now()) {
  const start = startedAt(metadata)
  return start === null ? null : Math.max(0, now - start)
}

// The line under a code cell; '' when it never ran.
export function timingText (metadata, state, now = Date.now()) {
  const who = ranBy(metadata)
  if (state === 'running') {
    const ran = runningFor(metadata, now)
    const counted = ran === null ? '' : ran < 60000 ? ` ${Math.floor(ran / 1000)} s` : ` ${duration(ran)}`
    return ['Running' + counted, who].filter(Boolean).join(' · ')
  }
  const elapsed = elapsedOf(metadata)
  const start = startedAt(metadata)
  if (elapsed === null && start === null) return ''
  return [elapsed === null ? null : duration(elapsed), who, start === null ? null : clock(start, now)].filter(Boolean).join(' · ')
}
