// The side panel's Share tab (owners): members and their roles — with the role a share
// link gives someone beyond their membership, and that link's revoke — and share links.
import { api, h, toast } from './api.js'

const ROLES = ['viewer', 'commenter', 'editor']
const RANK = { viewer: 0, commenter: 1, editor: 2, owner: 3 }

// A member's role as it works, and why, when a live share link they opened gives more than
// their membership (they keep editing after a demotion): the People list says so.
export function effectiveRole (member, links) {
  const through = links.filter((l) => l.active && (l.holders ?? []).includes(member.username) && RANK[l.role] > RANK[member.role])
    .sort((a, b) => RANK[b.role] - RANK[a.role])
  return through.length ? { role: through[0].role, links: through.filter((l) => l.role === through[0].role) } : { role: member.role, links: [] }
}

export class ShareTab {
  constructor (panel) { this.panel = panel }

  async render () {
    const id = this.panel.nb.info.id
    const [members, links] = await Promise.all([api('GET', `/api/notebooks/${id}/members`), api('GET', `/api/notebooks/${id}/links`)])
    if (this.panel.tab !== 'share') return
    const roleSelect = (value, onchange) => {
      const select = h('select', {}, ...ROLES.map((r) => h('option', { value: r, selected: r === value }, r)))
      select.addEventListener('change', () => onchange(select.value))
      return select
    }
    const revoke = async (link) => { await api('DELETE', `/api/notebooks/${id}/links/${link.id}`); this.render() }
    const memberRows = members.map((m) => {
      const effective = effectiveRole(m, links)
      const why = effective.links.length
        ? h('span', { class: 'effective', 'data-testid': 'member-effective' },
          `${m.role} · ${effective.role} through a share link`,
          ...effective.links.map((l) => h('button', { class: 'link danger', title: `Revoke the link “${l.label || l.id}”`, onclick: () => revoke(l) }, `revoke “${l.label || 'link'}”`)))
        : null
      return h('li', { 'data-member': m.username }, h('span', {}, m.username), m.role === 'owner'
        ? h('span', { class: 'muted' }, 'owner')
        : h('span', {}, roleSelect(m.role, (role) => this.setMember(m.username, role)),
          h('button', { class: 'link danger', onclick: () => this.removeMember(m.username) }, 'remove'), why))
    })
    const who = h('input', { placeholder: 'username', 'aria-label': 'username' })
    const whoRole = roleSelect('editor', () => {})
    const add = h('form', { class: 'row' }, who, whoRole, h('button', { type: 'submit' }, 'Add'))
    add.addEventListener('submit', (event) => { event.preventDefault(); if (who.value) this.setMember(who.value.trim(), whoRole.value) })

    const linkRole = roleSelect('viewer', () => {})
    const label = h('input', { placeholder: 'label (optional)', 'aria-label': 'link label', maxlength: 100 })
    const guests = h('input', { type: 'checkbox', 'aria-label': 'anyone with the link, guests included' })
    const days = h('input', { type: 'number', min: 0, placeholder: 'days', 'aria-label': 'expires after days', style: 'width:5em' })
    const created = h('div', { class: 'created-link' })
    const makeLink = h('form', { class: 'row wrap' }, linkRole, label, h('label', {}, guests, ' guests'), days, h('button', { type: 'submit', class: 'primary' }, 'Create link'))
    makeLink.addEventListener('submit', async (event) => {
      event.preventDefault()
      const expires = Number(days.value) > 0 ? new Date(Date.now() + Number(days.value) * 86400000).toISOString() : undefined
      try {
        const link = await api('POST', `/api/notebooks/${id}/links`, { role: linkRole.value, label: label.value, allow_guests: guests.checked, expires_at: expires })
        const url = `${location.origin}/links/${link.token}`
        await this.render()
        this.panel.body.querySelector('.created-link').replaceChildren(
          h('p', {}, 'Copy it now: it is shown only once.'),
          h('input', { readonly: true, value: url, 'aria-label': 'new link', 'data-testid': 'new-link' }),
          h('button', { onclick: () => navigator.clipboard?.writeText(url).then(() => toast('Copied')) }, 'Copy'))
      } catch (e) { toast(e.message, 'error') }
    })
    const linkRows = links.map((l) => h('li', { class: l.active ? '' : 'inactive' },
      h('span', {}, `${l.label || 'link'} · ${l.role}${l.allow_guests ? ' · guests' : ''}${l.expires_at ? ' · until ' + new Date(l.expires_at).toLocaleDateString() : ''}${l.holders?.length ? ' · opened by ' + l.holders.join(', ') : ''}`),
      l.active ? h('button', { class: 'link danger', onclick: () => revoke(l) }, 'revoke') : h('span', { class: 'muted' }, 'ended')))
    this.panel.body.replaceChildren(
      h('h3', {}, 'People'), h('ul', { class: 'plain' }, ...memberRows), add,
      h('h3', {}, 'Links'), makeLink, created, h('ul', { class: 'plain', 'data-testid': 'links' }, ...linkRows))
  }

  async setMember (username, role) {
    try { await api('PUT', `/api/notebooks/${this.panel.nb.info.id}/members/${encodeURIComponent(username)}`, { role }); this.render() } catch (e) { toast(e.message, 'error') }
  }

  async removeMember (username) {
    try { await api('DELETE', `/api/notebooks/${this.panel.nb.info.id}/members/${encodeURIComponent(username)}`); this.render() } catch (e) { toast(e.message, 'error') }
  }
}
