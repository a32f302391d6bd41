// The side panel's Files tab: the notebook's files as a tree, downloads for everyone, and for
// editors upload (button or drag and drop, with progress), new folder, rename and delete.
// Kept live by the files.changed events anyone's change (or the runtime's) sends.
import { api, h, toast } from './api.js'
import { buildTree, errorDetail, fileUrl, formatAge, formatSize, joinPath, parentPath, parseTime, quotaText, visibleRows } from './filetree.js'

const RELOAD_DELAY_MS = 100

export class FilesPanel {
  constructor (notebook) {
    this.nb = notebook
    this.open = new Map() // folder path -> expanded, where someone toggled it
    this.listing = null
    this.reloadTimer = null
    this.visible = false
    this.list = h('ul', { class: 'file-tree', 'data-testid': 'file-tree' })
    this.uploads = h('div', { class: 'uploads' })
    this.footer = h('div', { class: 'files-footer' })
    this.el = h('section', { class: 'files', 'data-testid': 'files' }, this.toolbar(), this.uploads, this.list, this.footer)
    if (this.canEdit) this.acceptDrops()
  }

  get canEdit () { return this.nb.canEdit }

  get base () { return `/api/notebooks/${encodeURIComponent(this.nb.info.id)}` }

  toolbar () {
    const archive = h('a', { href: `${this.base}/archive`, download: '', 'data-testid': 'download-archive' }, 'Download all (.zip)')
    if (!this.canEdit) return h('div', { class: 'row files-tools' }, h('span', { class: 'spacer' }), archive)
    const picker = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'upload-input' })
    picker.addEventListener('change', () => { this.upload([...picker.files], ''); picker.value = '' })
    return h('div', { class: 'row files-tools' },
      h('button', { class: 'primary', onclick: () => picker.click(), 'data-testid': 'upload' }, 'Upload'),
      h('button', { onclick: () => this.makeFolder(''), 'data-testid': 'new-folder' }, 'New folder'),
      picker, h('span', { class: 'spacer' }), archive)
  }

  // The panel shows the tab: fetch now. Hidden, changes only wait for the next show.
  show () {
    this.visible = true
    this.load()
    return this.el
  }

  hide () { this.visible = false }

  // A change by anyone: reload soon (one reload for a burst), if shown. True when the
  // change is news to someone not looking at this tab.
  event (message) {
    if (message.type === 'files.refused') toast(`${message.path} was not kept: ${message.reason}`, 'warning')
    if (message.type !== 'files.changed' && message.type !== 'files.refused') return false
    if (!this.visible) { this.listing = null; return message.type === 'files.changed' }
    clearTimeout(this.reloadTimer)
    this.reloadTimer = setTimeout(() => this.load(), RELOAD_DELAY_MS)
    return false
  }

  async load () {
    try {
      this.listing = await api('GET', `${this.base}/files`)
    } catch (e) {
      this.list.replaceChildren(h('li', { class: 'error' }, `Could not list the files: ${e.message}`))
      return
    }
    this.render()
  }

  render () {
    const { files, total_bytes: used, quota_bytes: quota } = this.listing
    const root = buildTree(files)
    const rows = visibleRows(root, this.open).map(({ node, depth, open }) => this.row(node, depth, open))
    this.list.replaceChildren(...(rows.length ? rows : [h('li', { class: 'empty' }, this.canEdit ? 'No files yet. Upload some, or drop them here.' : 'No files.')]))
    const { text, fraction } = quotaText(used, quota)
    this.footer.replaceChildren(
      h('span', { 'data-testid': 'files-usage' }, `${root.files} ${root.files === 1 ? 'file' : 'files'} · ${text}`),
      fraction === null ? null : h('meter', { min: 0, max: 1, high: 0.9, value: fraction, title: `${Math.round(fraction * 100)}% of the quota` }))
  }

  row (node, depth, open) {
    const folder = node.kind === 'directory'
    const name = folder
      ? h('button', { class: 'link file-name', 'aria-expanded': String(open), onclick: () => this.toggle(node, open) }, `${open ? '▾' : '▸'} ${node.name}/`)
      : h('a', { class: 'file-name', href: fileUrl(this.nb.info.id, node.path), download: node.name, title: `Download ${node.path}` }, node.name)
    const age = formatAge(node.modified)
    const meta = h('span', { class: 'muted file-meta', title: node.modified ? new Date(parseTime(node.modified)).toLocaleString() : '' },
      folder && !node.files ? 'empty' : formatSize(node.size), age ? ` · ${age}` : '', node.modified_by ? ` · ${node.modified_by}` : '')
    const actions = this.canEdit
      ? h('span', { class: 'file-actions' },
        h('button', { class: 'link', title: `Rename or move ${node.path}`, onclick: () => this.rename(node) }, 'rename'),
        h('button', { class: 'link danger', title: `Delete ${node.path}`, onclick: () => this.remove(node) }, 'delete'))
      : null
    return h('li', { class: `file-row ${folder ? 'folder' : 'file'}`, style: `padding-left:${depth * 16}px`, 'data-path': node.path, 'data-kind': node.kind, 'data-dir': folder ? node.path : parentPath(node.path) },
      name, meta, actions)
  }

  toggle (node, open) {
    this.open.set(node.path, !open)
    this.render()
  }

  // --- changes (editors) -----------------------------------------------------------------

  async makeFolder (inside) {
    const name = prompt('New folder name', '')?.trim()
    if (!name) return
    await this.change('POST', joinPath(inside, name), { type: 'directory' })
  }

  async rename (node) {
    const target = prompt(`Rename or move ${node.path} to`, node.path)?.trim()
    if (!target || target === node.path) return
    await this.change('PATCH', node.path, { path: target })
  }

  async remove (node) {
    const what = node.kind === 'directory' ? `the folder ${node.path} and everything in it` : node.path
    if (!confirm(`Delete ${what}?`)) return
    await this.change('DELETE', node.path)
  }

  async change (method, path, body) {
    try {
      await api(method, fileUrl(this.nb.info.id, path), body)
    } catch (e) {
      toast(e.message, 'error')
    }
    this.load()
  }

  // --- uploads -----------------------------------------------------------------------------

  acceptDrops () {
    let depth = 0 // dragenter/dragleave fire for every child crossed
    const target = (event) => event.target.closest?.('[data-dir]')
    const clear = () => {
      depth = 0
      this.el.classList.remove('dragging')
      for (const row of this.list.querySelectorAll('.drop-target')) row.classList.remove('drop-target')
    }
    const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files')
    this.el.addEventListener('dragenter', (event) => {
      if (!carriesFiles(event)) return
      event.preventDefault()
      depth += 1
      this.el.classList.add('dragging')
    })
    this.el.addEventListener('dragover', (event) => {
      if (!carriesFiles(event)) return
      event.preventDefault()
      event.dataTransfer.dropEffect = 'copy'
      const row = target(event)
      for (const other of this.list.querySelectorAll('.drop-target')) if (other !== row) other.classList.remove('drop-target')
      row?.classList.add('drop-target')
    })
    this.el.addEventListener('dragleave', () => { depth -= 1; if (depth <= 0) clear() })
    this.el.addEventListener('drop', (event) => {
      if (!carriesFiles(event)) return
      event.preventDefault()
      const folder = target(event)?.dataset.dir ?? ''
      clear()
      this.upload([...event.dataTransfer.files], folder)
    })
  }

  upload (files, folder) {
    return Promise.all(files.map((file) => this.send(file, joinPath(folder, file.name))))
  }

  // XMLHttpRequest, not fetch: only it reports upload progress.
  send (file, path) {
    const bar = h('progress', { max: 1, value: 0 })
    const item = h('div', { class: 'upload', 'data-testid': 'upload-progress', 'data-path': path }, h('span', { class: 'upload-name' }, path), bar)
    this.uploads.append(item)
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest()
      xhr.open('PUT', fileUrl(this.nb.info.id, path))
      xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream')
      xhr.upload.addEventListener('progress', (event) => { if (event.lengthComputable) bar.value = event.loaded / event.total })
      const done = (ok, message) => {
        item.remove()
        if (ok) this.load()
        else toast(`${path} was not uploaded: ${message}`, 'error')
        resolve(ok)
      }
      xhr.addEventListener('load', () => {
        const ok = xhr.status >= 200 && xhr.status < 300
        done(ok, ok ? '' : errorDetail(xhr.status, xhr.responseText))
      })
      xhr.addEventListener('error', () => done(false, errorDetail(0, '')))
      xhr.send(file)
    })
  }
}
