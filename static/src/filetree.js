// A notebook's file list as the Files panel shows it: a tree built from the flat listing
// (folders holding files are implied by their paths), the rows it shows, and the sizes and
// times as text. Pure functions, no DOM, so Node can test them.

const KB = 1024
const MB = 1024 * KB
const GB = 1024 * MB

// One node per file or folder; a folder's size and time are those of all it holds.
export function buildTree (files) {
  const root = folder('', '')
  const folders = new Map([['', root]])
  const folderAt = (path) => {
    if (folders.has(path)) return folders.get(path)
    const cut = path.lastIndexOf('/')
    const parent = folderAt(cut < 0 ? '' : path.slice(0, cut))
    const made = folder(path, path.slice(cut + 1))
    parent.children.push(made)
    folders.set(path, made)
    return made
  }
  for (const entry of files) {
    if (entry.kind === 'directory') {
      stamp(folderAt(entry.path), entry)
      continue
    }
    const cut = entry.path.lastIndexOf('/')
    folderAt(cut < 0 ? '' : entry.path.slice(0, cut)).children.push({ ...entry, name: entry.path.slice(cut + 1), kind: 'file' })
  }
  total(root)
  return root
}

function folder (path, name) {
  return { path, name, kind: 'directory', size: 0, files: 0, modified: null, modified_by: '', children: [] }
}

function stamp (node, entry) {
  if (node.modified === null || parseTime(entry.modified) > parseTime(node.modified)) {
    node.modified = entry.modified
    node.modified_by = entry.modified_by
  }
}

// Folders first, then by name; sizes, counts and the latest change rolled up.
function total (node) {
  node.children.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'directory' ? -1 : 1) || compareNames(a.name, b.name))
  for (const child of node.children) {
    if (child.kind === 'directory') {
      total(child)
      node.files += child.files
    } else {
      node.files += 1
    }
    node.size += child.size
    if (child.modified !== null) stamp(node, child)
  }
}

function compareNames (a, b) {
  return a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' }) || (a < b ? -1 : a > b ? 1 : 0)
}

// Dot-folders (.local, .cache: what pip and tools leave) start closed, the rest open.
export function isOpen (node, open) {
  return open.has(node.path) ? open.get(node.path) : !node.name.startsWith('.')
}

// The rows to show, depth first, without what closed folders hold.
export function visibleRows (root, open = new Map()) {
  const rows = []
  const walk = (node, depth) => {
    for (const child of node.children) {
      const expanded = child.kind === 'directory' && isOpen(child, open)
      rows.push({ node: child, depth, open: expanded })
      if (expanded) walk(child, depth + 1)
    }
  }
  walk(root, 0)
  return rows
}

// 0 B, 900 B, 1.5 KB, 12 KB, 3.4 MB, 1.1 GB: short, for a row.
export function formatSize (bytes) {
  if (bytes < KB) return `${bytes} B`
  for (const [unit, size] of [['KB', KB], ['MB', MB], ['GB', GB]]) {
    const value = bytes / size
    if (value < 1024 || unit === 'GB') return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`
  }
}

// "1.2 MB of 1024 MB": what the files use of the notebook's quota, and the fraction for a meter.
export function quotaText (totalBytes, quotaBytes) {
  return {
    text: `${formatSize(totalBytes)} of ${formatSize(quotaBytes)}`,
    fraction: quotaBytes > 0 ? Math.min(1, totalBytes / quotaBytes) : null,
  }
}

// The server's times are UTC; one without a zone is read as UTC, not as local time.
export function parseTime (iso) {
  if (!iso) return NaN
  return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`)
}

// just now, 5 min ago, 3 h ago, then the date: short, for a row.
export function formatAge (iso, now = Date.now()) {
  const time = parseTime(iso)
  if (Number.isNaN(time)) return ''
  const seconds = Math.max(0, (now - time) / 1000)
  if (seconds < 60) return 'just now'
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`
  return new Date(time).toISOString().slice(0, 10)
}

// Each segment encoded on its own, so a name with spaces, # or ? stays one segment.
export function fileUrl (notebookId, path) {
  return `/api/notebooks/${encodeURIComponent(notebookId)}/files/${path.split('/').map(encodeURIComponent).join('/')}`
}

export function joinPath (folderPath, name) {
  return folderPath ? `${folderPath}/${name}` : name
}

export function parentPath (path) {
  const cut = path.lastIndexOf('/')
  return cut < 0 ? '' : path.slice(0, cut)
}

// The server's reason from an error response's body ({"detail": ...}), else the status.
export function errorDetail (status, body) {
  try {
    const detail = JSON.parse(body).detail
    if (typeof detail === 'string') return detail
    if (detail !== undefined) return JSON.stringify(detail)
  } catch (e) {
    // not JSON: fall back to the status
  }
  return status ? `HTTP ${status}` : 'the connection failed'
}
