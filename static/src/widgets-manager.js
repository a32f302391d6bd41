// The widget manager, bundled apart (dist/widgets-manager.js) and loaded only when a
// notebook has widgets: ipywidgets' standard manager (ManagerBase, the core that
// @jupyter-widgets/html-manager and JupyterLab's manager both extend; html-manager itself
// drags in JupyterLab's whole output area), displaying views as HTMLManager does, with its
// comms going through the server (widgets.js) instead of a kernel connection.
//
// It runs in the page, so it loads no code a kernel names: only the built-in models
// (@jupyter-widgets/base, @jupyter-widgets/controls of ipywidgets 8, and an Output widget
// drawn by the page's own output renderer) are known; any other module is refused and the
// widget shows a note. The built-in views put kernel strings in the page as text, except
// HTML / HTMLMath values and HTML descriptions: those go through the page's sanitiser, as
// markdown does. Error views say what failed as text.
import { ManagerBase } from '@jupyter-widgets/base-manager'
import { Widget } from '@lumino/widgets'
import * as base from '@jupyter-widgets/base'
import * as controls from '@jupyter-widgets/controls'
import '@jupyter-widgets/controls/css/widgets.css'
import './widgets.css'
import { userClasses } from './content-policy.js'
import { sanitizeHtml } from './sanitize.js'

const PROTOCOL = '2' // ipywidgets 8 models: @jupyter-widgets/base 2.x, controls 2.x

// --- the built-in views, made safe -----------------------------------------------------

function fillSanitized (el, html) {
  el.replaceChildren(sanitizeHtml(String(html ?? '')))
}

class HTMLView extends controls.HTMLView {
  update () {
    fillSanitized(this.content, this.model.get('value'))
    return Object.getPrototypeOf(controls.HTMLView.prototype).update.call(this)
  }
}

class HTMLMathView extends controls.HTMLMathView {
  update () {
    fillSanitized(this.content, this.model.get('value'))
    this.typeset(this.content)
    return Object.getPrototypeOf(controls.HTMLMathView.prototype).update.call(this)
  }
}

// Classes a kernel adds (`widget.add_class`) are renamed as the sanitiser renames an
// author's (`user-…`), so none is one of the page's own; ipywidgets' own stay as they are.
const OWN_CLASS = /^(mod-|widget-|jupyter-|lm-|p-|noUi-|progress-bar-|alert$|alert-)/
const updateClasses = base.DOMWidgetView.prototype.update_classes
base.DOMWidgetView.prototype.update_classes = function (oldClasses, newClasses, el) {
  const rename = (names) => (names || []).map((name) => OWN_CLASS.test(name) ? name : userClasses(name))
  return updateClasses.call(this, rename(oldClasses), rename(newClasses), el)
}

// ipywidgets' error view writes the error (which names what the kernel asked for) as HTML
// when clicked: here it is one line of text.
base.ErrorWidgetView.prototype.render = function () {
  const { msg } = this.generateErrorMessage()
  this.el.classList.add('widget-unsupported')
  this.el.textContent = `This widget cannot be shown here: ${msg || 'it failed to load'}.`
}

// The Output widget: what the kernel put in its `outputs`, drawn as the cell outputs are.
function outputModule (renderOutput) {
  class OutputModel extends base.DOMWidgetModel {
    defaults () {
      return { ...super.defaults(), _model_name: 'OutputModel', _view_name: 'OutputView', _model_module: '@jupyter-widgets/output', _view_module: '@jupyter-widgets/output', outputs: [], msg_id: '' }
    }
  }
  class OutputView extends base.DOMWidgetView {
    render () {
      this.el.classList.add('widget-output')
      this.listenTo(this.model, 'change:outputs', () => this.update())
      this.update()
    }

    update () {
      const outputs = this.model.get('outputs') || []
      this.el.replaceChildren(...outputs.map((output) => renderOutput(output)))
      return super.update()
    }
  }
  return { OutputModel, OutputView }
}

// --- the manager ------------------------------------------------------------------------

function bufferOf (b64) {
  const raw = atob(b64)
  const bytes = new Uint8Array(raw.length)
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i)
  return new DataView(bytes.buffer)
}

function base64Of (buffer) {
  const view = ArrayBuffer.isView(buffer) ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : new Uint8Array(buffer)
  let raw = ''
  for (let i = 0; i < view.length; i += 0x8000) raw += String.fromCharCode(...view.subarray(i, i + 0x8000))
  return btoa(raw)
}

// A comm as ipywidgets' models expect one; what they send goes to `send` (the server).
class ServerComm {
  constructor (commId, send) {
    this.comm_id = commId
    this.target_name = 'jupyter.widget'
    this._send = send
    this._onMsg = null
    this._onClose = null
  }

  open () { return '' } // the kernel opens comms, never the page

  close () { return '' } // nor does the page close them

  send (data, callbacks, metadata, buffers) {
    const msgId = crypto.randomUUID()
    const idle = () => callbacks?.iopub?.status?.({ content: { execution_state: 'idle' }, parent_header: { msg_id: msgId } })
    this._send(this.comm_id, msgId, data, (buffers || []).map(base64Of)).finally(idle)
    return msgId
  }

  // A change the server refused (or never got): the widget goes back to the server's
  // state, delivered as the echo of that change so the model stops waiting for it.
  restore (msgId, model) {
    this.receive({ msg_type: 'comm_msg', data: { method: 'echo_update', state: model.state, buffer_paths: model.buffer_paths }, metadata: {}, buffers: model.buffers, parent_msg_id: msgId })
  }

  on_msg (callback) { this._onMsg = callback }

  on_close (callback) { this._onClose = callback }

  receive (event) {
    const msg = {
      content: { comm_id: this.comm_id, data: event.data },
      metadata: event.metadata,
      buffers: event.buffers.map(bufferOf),
      parent_header: { msg_id: event.parent_msg_id }
    }
    if (event.msg_type === 'comm_close') this._onClose?.(msg)
    else this._onMsg?.(msg)
  }
}

class TandemWidgetManager extends ManagerBase {
  constructor (send, renderOutput) {
    super()
    this._sendToServer = send
    this._output = outputModule(renderOutput)
    this._controls = { ...controls, HTMLView, HTMLMathView }
    this.comms = new Map()
    this.closedIds = new Set()
  }

  // As HTMLManager.display_view: a view is a Lumino widget attached to `el`.
  async display_view (view, el) {
    Widget.attach(view.luminoWidget || view.pWidget, el)
  }

  _get_comm_info () { return Promise.resolve({}) } // the server's snapshot says what exists

  _create_comm (targetName, modelId) {
    // Only the kernel opens comms (a page never creates a widget of its own).
    return Promise.reject(new Error('widgets are created by the kernel'))
  }

  async loadClass (className, moduleName, moduleVersion) {
    const major = String(moduleVersion || '').replace(/^[^0-9]*/, '').split('.')[0]
    let module = null
    if (moduleName === '@jupyter-widgets/base' && major === PROTOCOL) module = base
    else if (moduleName === '@jupyter-widgets/controls' && major === PROTOCOL) module = this._controls
    else if (moduleName === '@jupyter-widgets/output') module = this._output
    if (!module) throw new Error(`the module ${String(moduleName).slice(0, 100)} is not one Tandem loads`)
    const found = Object.prototype.hasOwnProperty.call(module, className) ? module[className] : undefined
    if (typeof found !== 'function') throw new Error(`no ${String(className).slice(0, 100)} in ${moduleName}`)
    return found
  }

  inline_sanitize (source) {
    const holder = document.createElement('div')
    fillSanitized(holder, source)
    return holder.innerHTML
  }

  comm (commId) {
    let comm = this.comms.get(commId)
    if (!comm) {
      comm = new ServerComm(commId, this._sendToServer)
      this.comms.set(commId, comm)
    }
    return comm
  }

  // A model as the server's snapshot has it (GET .../widgets), made or brought up to date.
  async load (model) {
    this.closedIds.delete(model.comm_id) // a kernel adopted anew says it has it
    const state = structuredClone(model.state)
    base.put_buffers(state, model.buffer_paths, model.buffers.map(bufferOf))
    if (this.has_model(model.comm_id)) {
      const existing = await this.get_model(model.comm_id)
      existing.set_state(await existing.constructor._deserialize_state(state, this))
      return
    }
    await this.new_model({
      model_id: model.comm_id,
      model_name: state._model_name,
      model_module: state._model_module,
      model_module_version: state._model_module_version,
      comm: this.comm(model.comm_id)
    }, state)
  }

  // One `widget.comm` event.
  async receive (event) {
    if (event.msg_type === 'comm_open') {
      const state = event.data.state || {}
      await this.load({ comm_id: event.comm_id, state, buffer_paths: event.data.buffer_paths || [], buffers: event.buffers })
      return
    }
    const comm = this.comms.get(event.comm_id)
    if (!comm) return
    if (event.msg_type === 'comm_close') {
      this.comms.delete(event.comm_id)
      this.closedIds.add(event.comm_id)
    }
    comm.receive(event)
  }

  async forget (keep) {
    for (const commId of [...this.comms.keys()]) {
      if (keep.has(commId)) continue
      const comm = this.comms.get(commId)
      this.closedIds.add(commId)
      this.comms.delete(commId)
      try {
        comm.receive({ msg_type: 'comm_close', data: {}, metadata: {}, buffers: [], parent_msg_id: '' })
      } catch (error) {
        // A view whose output was drawn again left the page without being removed, and
        // Lumino will not detach it ("Widget is not attached"): the other widgets still go.
        console.warn('widget', commId, 'closed with an error:', error.message)
      }
    }
  }

  // Whether this widget's comm was closed here (its kernel closed it or went); one not
  // yet opened may still come (its comm_open can arrive after the output showing it).
  closed (commId) {
    return this.closedIds.has(commId)
  }

  async show (modelId, el) {
    const model = await this.get_model(modelId)
    const view = await this.create_view(model, {})
    await this.display_view(view, el)
    return view
  }
}

export function createManager ({ send, renderOutput }) {
  return new TandemWidgetManager(send, renderOutput)
}
