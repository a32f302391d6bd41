import 'katex/dist/katex.min.css'
import './app.css'
import { h } from './api.js'
import { loginPage } from './login.js'
import { listPage } from './list.js'
import { editorPage } from './editor.js'
import { linkPage } from './link.js'
import { adminPage } from './admin.js'
import { accountPage, invitePage } from './account.js'
import { startTheme } from './theme.js'

startTheme()

const root = document.getElementById('app')
const page = document.body.dataset.page
const pages = {
  login: () => loginPage(root),
  editor: () => editorPage(root, document.body.dataset.notebook),
  link: () => linkPage(root, document.body.dataset.token),
  admin: () => adminPage(root),
  account: () => accountPage(root),
  invite: () => invitePage(root, document.body.dataset.token),
  forbidden: () => root.replaceChildren(h('div', { class: 'card login' }, h('h1', {}, 'Admins only'), h('p', { role: 'alert' }, 'This page is for admins.'), h('a', { href: '/' }, 'Back to notebooks'))),
  list: () => listPage(root)
}
const run = (pages[page] || pages.list)()
Promise.resolve(run).catch((error) => root.replaceChildren(h('p', { class: 'error', role: 'alert' }, error.message)))
