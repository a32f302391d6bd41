// What the runtime uses against its limits, and how its kernels are boxed, as the runtime
// badge shows them (Colab's RAM and Disk bars). Pure functions of the runtime status JSON,
// no DOM: the badge puts what they return in as text.

const MB = 1024 * 1024
const GB = 1024 * MB

// 312 MB, 1.5 GB, 120 GB: short, for the badge.
export function formatBytes (bytes) {
  if (bytes < GB) return `${Math.round(bytes / MB)} MB`
  const gb = bytes / GB
  return `${gb < 100 ? gb.toFixed(1) : Math.round(gb)} GB`
}

const exact = (bytes) => bytes.toLocaleString('en-US')

// One meter per measured resource: `text` for the badge ("312 MB / 400 MB"), `fraction`
// of the limit (null where there is none: 0 in a limit means none), `detail` with the full
// numbers for the tooltip. An unmeasured resource (null) has no meter.
export function usageMeters (usage) {
  if (!usage) return []
  const limits = usage.limits || {}
  const meters = []
  const add = (name, label, used, limitMb, long = label) => {
    if (used === null || used === undefined) return
    const limit = limitMb > 0 ? limitMb * MB : null
    const fraction = limit ? Math.min(1, used / limit) : null
    meters.push({
      name,
      label,
      used,
      limit,
      fraction,
      text: limit ? `${formatBytes(used)} / ${formatBytes(limit)}` : formatBytes(used),
      detail: limit
        ? `${long}: ${formatBytes(used)} of ${formatBytes(limit)} (${Math.round((100 * used) / limit)}%) · ${exact(used)} of ${exact(limit)} bytes`
        : `${long}: ${formatBytes(used)}, no limit · ${exact(used)} bytes`
    })
  }
  add('ram', 'RAM', usage.memory_bytes, limits.memory_mb)
  add('disk', 'Disk', usage.disk_bytes, limits.disk_mb)
  add('gpu', 'GPU', usage.gpu_memory_bytes, 0, 'GPU memory')
  return meters
}

// The tooltip of the usage meters: every figure in full, then the other limits.
export function usageDetail (usage) {
  if (!usage) return ''
  const limits = usage.limits || {}
  const lines = usageMeters(usage).map((m) => m.detail)
  if (usage.memory_bytes === null || usage.memory_bytes === undefined) lines.push('RAM: not measured')
  lines.push(`CPUs: ${limits.cpus > 0 ? limits.cpus : 'no limit'}`)
  lines.push(`Processes: ${limits.max_processes > 0 ? `at most ${limits.max_processes}` : 'no limit'}`)
  return lines.join('\n')
}

// How the kernels are boxed: `text` for the badge, `level` (danger: said loudly; quiet),
// `title` for its tooltip. Null when not known (no kernel placed).
export function sandboxMark (sandbox) {
  if (!sandbox) return null
  const detail = sandbox.detail || ''
  if (sandbox.kind === 'bubblewrap') {
    const title = ['Kernels run in a bubblewrap sandbox.', sandbox.limits ? `Limits enforced by ${sandbox.limits}.` : '', detail]
    return { kind: 'bubblewrap', text: 'sandboxed', level: 'quiet', title: title.filter(Boolean).join('\n') }
  }
  if (sandbox.kind === 'unavailable') {
    const why = detail || 'the worker cannot make a sandbox'
    return { kind: 'unavailable', text: `Kernels cannot start: ${why}`, level: 'danger', title: `No sandbox can be made, so no kernel starts: ${why}` }
  }
  return { kind: 'none', text: 'UNSANDBOXED', level: 'danger', title: detail || 'Kernels run without a sandbox, as the worker\'s user.' }
}
