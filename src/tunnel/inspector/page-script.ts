// The inspector page's script (plain browser JavaScript, kept in a string: the page has no external assets).
// It lists exchanges newest first from the API and the live event stream, and shows one in full: headers,
// the body as text, pretty JSON, form fields or a hex dump, and replay / edit-and-replay. Every value is
// put on the page as text (textContent), never as markup.
export const INSPECTOR_SCRIPT = String.raw`
(function () {
  'use strict';
  var API = '/api/requests/http';
  var items = {};
  var selected = null;
  var renderQueued = false;
  var detailTimer = null;
  var editing = false;

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'onclick') node.onclick = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KB';
    return (n / 1048576).toFixed(1) + ' MB';
  }
  function count(n, what) { return n + ' ' + what + (n === 1 ? '' : 's'); }
  function duration(ns) {
    var ms = ns / 1e6;
    return ms < 1000 ? ms.toFixed(ms < 10 ? 1 : 0) + ' ms' : (ms / 1000).toFixed(2) + ' s';
  }
  function clock(iso) {
    var d = new Date(iso);
    function p(n, w) { return String(n).padStart(w || 2, '0'); }
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds()) + '.' + p(d.getMilliseconds(), 3);
  }
  function statusOf(r) {
    if (r.response) return { text: String(r.response.status_code), cls: 's' + String(r.response.status_code)[0] };
    if (r.error) return { text: 'ERR', cls: 'sx' };
    return { text: '…', cls: '' };
  }
  function header(headers, name) {
    var wanted = name.toLowerCase();
    var key = Object.keys(headers || {}).find(function (k) { return k.toLowerCase() === wanted; });
    return key ? headers[key].join(', ') : '';
  }

  // ---- the list ----
  function upsert(r) {
    items[r.id] = r;
    queueRender();
    if (r.id === selected && !editing) {
      clearTimeout(detailTimer);
      detailTimer = setTimeout(function () { loadDetail(r.id); }, 150);
    }
  }
  function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(render);
  }
  function matches(r, q) {
    var s = statusOf(r).text;
    var text = (r.request.method + ' ' + r.request.uri + ' ' + s + ' ' + (r.upgrade || '') + ' ' + (r.error || '')).toLowerCase();
    return q.split(/\s+/).every(function (word) { return text.indexOf(word) >= 0; });
  }
  function render() {
    renderQueued = false;
    var q = $('filter').value.trim().toLowerCase();
    var ids = Object.keys(items).sort().reverse();
    var frag = document.createDocumentFragment();
    var shown = 0;
    ids.forEach(function (id) {
      var r = items[id];
      if (q && !matches(r, q)) return;
      shown++;
      frag.appendChild(row(r));
    });
    $('rows').replaceChildren(frag);
    $('none').style.display = shown ? 'none' : '';
    $('none').textContent = ids.length ? 'No request matches the filter.' : 'Waiting for requests…';
  }
  function row(r) {
    var s = statusOf(r);
    var path = el('td', { class: 'path', text: r.request.uri });
    if (r.upgrade) path.appendChild(el('span', { class: 'tag', text: r.upgrade }));
    if (r.replay_of) path.appendChild(el('span', { class: 'tag', text: 'replay' }));
    var size = '↑' + bytes(r.request.body_size) + (r.response ? ' ↓' + bytes(r.response.body_size) : '');
    return el('tr', {
      class: 'entry' + (r.id === selected ? ' selected' : '') + (r.replay_of ? ' replay' : ''),
      'data-id': r.id,
      onclick: function () { select(r.id); },
    }, [
      el('td', { class: 'muted', text: clock(r.start) }),
      el('td', { class: 'm', text: r.request.method }),
      path,
      el('td', { class: 'status ' + s.cls, text: s.text }),
      el('td', { class: 'dur muted', text: r.done ? duration(r.duration) : '' }),
      el('td', { class: 'size muted', text: size }),
    ]);
  }
  function select(id) {
    selected = id;
    editing = false;
    document.body.classList.add('showing');
    queueRender();
    loadDetail(id);
  }

  // ---- one exchange in full ----
  function loadDetail(id) {
    fetch(API + '/' + id).then(function (res) { return res.ok ? res.json() : null; }).then(function (d) {
      if (d && d.id === selected) showDetail(d);
    });
  }
  function headersTable(headers) {
    var rows = [];
    Object.keys(headers).forEach(function (k) {
      headers[k].forEach(function (v) { rows.push(el('tr', {}, [el('td', { text: k }), el('td', { text: v })])); });
    });
    return el('table', { class: 'headers' }, [el('tbody', {}, rows)]);
  }
  function showDetail(d) {
    var box = $('detail');
    var s = statusOf(d);
    var facts = [d.response ? d.response.status : (d.error ? 'failed: ' + d.error : 'waiting for the answer'),
      d.done ? duration(d.duration) : 'in progress', clock(d.start), 'from ' + (d.remote_addr || '?')];
    var title = el('h2', {}, [el('span', { class: 'm', text: d.request.method + ' ' }), d.request.uri]);
    var sub = el('div', { class: 'muted' }, [el('span', { class: s.cls, text: facts[0] }), ' · ' + facts.slice(1).join(' · ')]);
    if (d.replay_of) {
      sub.appendChild(document.createTextNode(' · replay of '));
      sub.appendChild(el('a', { href: '#', text: d.replay_of, onclick: function (e) { e.preventDefault(); select(d.replay_of); } }));
    }
    if (d.error && d.response) sub.appendChild(el('div', { class: 'note', text: d.error }));
    var actions = el('div', { class: 'actions' }, [
      el('button', { id: 'replay', class: 'primary', type: 'button', text: 'Replay', onclick: function () { replay({ id: d.id }); } }),
      el('button', { id: 'edit', type: 'button', text: 'Edit and replay', onclick: function () { openEditor(d); } }),
    ]);
    var panel = el('div', { id: 'panel' });
    var tabs = el('div', { class: 'tabs' });
    [['request', 'Request'], ['response', 'Response']].forEach(function (t) {
      var b = el('button', { type: 'button', 'data-tab': t[0], text: t[1] });
      b.onclick = function () {
        Array.prototype.forEach.call(tabs.children, function (x) { x.classList.toggle('on', x === b); });
        showPart(d, t[0], panel);
      };
      tabs.appendChild(b);
    });
    box.replaceChildren(title, sub, actions, el('div', { id: 'editor' }), tabs, panel);
    tabs.children[d.response ? 1 : 0].click();
  }
  function showPart(d, side, panel) {
    var part = side === 'request' ? d.request : d.response;
    if (!part) { panel.replaceChildren(el('div', { class: 'empty', text: d.error ? 'No response: ' + d.error : 'No response yet.' })); return; }
    var body = el('div', { id: 'bodybox' });
    panel.replaceChildren(el('h3', { text: 'Body (' + bytes(part.body_size) + ')' }), body, el('h3', { text: 'Headers' }), headersTable(part.headers));
    if (part.body_size === 0) { body.appendChild(el('div', { class: 'muted', text: 'No body.' })); return; }
    fetch(API + '/' + d.id + '/' + side + '/body').then(function (res) {
      return res.arrayBuffer().then(function (buf) { showBody(body, new Uint8Array(buf), res.headers, header(part.headers, 'content-type'), part.body_size); });
    });
  }

  // ---- bodies: text, JSON, form fields, hex ----
  function isBinary(data) {
    for (var i = 0; i < Math.min(data.length, 4096); i++) if (data[i] === 0) return true;
    return false;
  }
  function prettyJson(text) {
    var value = JSON.parse(text);
    var out = JSON.stringify(value, null, 2);
    var pre = el('pre', { id: 'body', class: 'json' });
    var re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
    var last = 0;
    var m;
    while ((m = re.exec(out))) {
      pre.appendChild(document.createTextNode(out.slice(last, m.index)));
      var cls = m[1] ? (m[2] ? 'j-key' : 'j-str') : 'j-num';
      pre.appendChild(el('span', { class: cls, text: m[1] || m[0] }));
      if (m[2]) pre.appendChild(document.createTextNode(m[2]));
      last = m.index + m[0].length;
    }
    pre.appendChild(document.createTextNode(out.slice(last)));
    return pre;
  }
  function formTable(text) {
    var rows = [];
    new URLSearchParams(text).forEach(function (v, k) { rows.push(el('tr', {}, [el('td', { text: k }), el('td', { text: v })])); });
    return el('table', { id: 'body', class: 'headers form' }, [el('tbody', {}, rows)]);
  }
  function hexDump(data) {
    var lines = [];
    var n = Math.min(data.length, 65536);
    for (var off = 0; off < n; off += 16) {
      var hex = '';
      var ascii = '';
      for (var i = 0; i < 16; i++) {
        if (off + i < n) {
          var b = data[off + i];
          hex += (b < 16 ? '0' : '') + b.toString(16) + (i === 7 ? '  ' : ' ');
          ascii += b >= 32 && b < 127 ? String.fromCharCode(b) : '.';
        } else hex += i === 7 ? '    ' : '   ';
      }
      lines.push(off.toString(16).padStart(8, '0') + '  ' + hex + ' ' + ascii);
    }
    if (data.length > n) lines.push('… ' + (data.length - n) + ' more bytes');
    return el('pre', { id: 'body', class: 'hex', text: lines.join('\n') });
  }
  function showBody(box, data, headers, type, size) {
    var text = new TextDecoder('utf-8').decode(data);
    var notes = [];
    if (headers.get('x-body-decoded')) notes.push('decoded from ' + headers.get('x-body-decoded'));
    if (headers.get('x-body-cut') === '1') notes.push('cut: the first ' + bytes(data.length) + ' of ' + bytes(size) + ' were kept');
    if (headers.get('x-body-error')) notes.push(headers.get('x-body-error'));
    var views = { text: function () { return el('pre', { id: 'body', class: 'text', text: text }); }, hex: function () { return hexDump(data); } };
    var json = null;
    try { JSON.parse(text); json = true; } catch (e) { json = false; }
    if (json) views.json = function () { return prettyJson(text); };
    if (/x-www-form-urlencoded/i.test(type)) views.form = function () { return formTable(text); };
    var first = isBinary(data) ? 'hex' : json ? 'json' : views.form ? 'form' : 'text';
    var bar = el('div', { class: 'views' });
    var holder = el('div');
    ['text', 'json', 'form', 'hex'].forEach(function (name) {
      if (!views[name]) return;
      var b = el('button', { type: 'button', 'data-view': name, text: name === 'json' ? 'JSON' : name === 'hex' ? 'Hex' : name === 'form' ? 'Form' : 'Text' });
      b.onclick = function () {
        Array.prototype.forEach.call(bar.children, function (x) { x.classList.toggle('on', x === b); });
        holder.replaceChildren(views[name]());
      };
      bar.appendChild(b);
    });
    box.replaceChildren(bar);
    notes.forEach(function (n) { box.appendChild(el('div', { class: 'note', text: n })); });
    box.appendChild(holder);
    bar.querySelector('[data-view="' + first + '"]').click();
  }

  // ---- replay ----
  function replay(params) {
    return fetch(API, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) }).then(function (res) {
      if (res.status === 204) {
        var id = (res.headers.get('location') || '').split('/').pop();
        if (id) select(id);
        return;
      }
      return res.json().then(function (e) { alert('Replay failed: ' + e.msg); });
    });
  }
  function openEditor(d) {
    editing = true;
    var lines = [];
    Object.keys(d.request.headers).forEach(function (k) { d.request.headers[k].forEach(function (v) { lines.push(k + ': ' + v); }); });
    var method = el('input', { id: 'edit-method', value: d.request.method, size: '8', 'aria-label': 'method' });
    var uri = el('input', { id: 'edit-uri', value: d.request.uri, 'aria-label': 'path', style: 'flex:1' });
    var hdrs = el('textarea', { id: 'edit-headers', 'aria-label': 'headers' });
    hdrs.value = lines.join('\n');
    var body = el('textarea', { id: 'edit-body', 'aria-label': 'body' });
    var form = el('form', { class: 'edit' }, [el('div', { class: 'row' }, [method, uri]), hdrs, body,
      el('div', { class: 'row' }, [el('button', { class: 'primary', type: 'submit', text: 'Send' }),
        el('button', { type: 'button', text: 'Cancel', onclick: function () { editing = false; $('editor').replaceChildren(); } })])]);
    form.onsubmit = function (e) {
      e.preventDefault();
      var headers = {};
      hdrs.value.split('\n').forEach(function (line) {
        var i = line.indexOf(':');
        if (i <= 0) return;
        var k = line.slice(0, i).trim();
        (headers[k] = headers[k] || []).push(line.slice(i + 1).trim());
      });
      replay({ id: d.id, method: method.value, uri: uri.value, headers: headers, body: body.value });
    };
    $('editor').replaceChildren(form);
    if (d.request.body_size > 0) {
      fetch(API + '/' + d.id + '/request/body').then(function (res) { return res.text(); }).then(function (t) { body.value = t; });
    }
  }

  // ---- the tunnel ----
  function showTunnel(t) {
    var state = $('state');
    state.textContent = t.status;
    state.className = 'pill ' + t.status;
    $('url').textContent = t.public_url;
    $('url').href = t.proto === 'tcp' ? '#' : t.public_url;
    $('target').textContent = '→ ' + t.config.addr + (t.latency_ms !== null ? ' · ' + Math.round(t.latency_ms) + ' ms to the server' : '');
    var tr = t.traffic;
    $('traffic').textContent = tr ? (t.proto === 'tcp' ? count(tr.connections, 'connection') : count(tr.requests, 'request')) + ' · in ' + bytes(tr.bytes_in) + ' · out ' + bytes(tr.bytes_out) + ' · ' + tr.open_streams + ' open' : '';
  }

  $('filter').addEventListener('input', queueRender);
  $('clear').onclick = function () { fetch(API, { method: 'DELETE' }); };
  $('back').onclick = function () { document.body.classList.remove('showing'); };
  var events = new EventSource('/api/events');
  events.addEventListener('exchange', function (e) { upsert(JSON.parse(e.data)); });
  events.addEventListener('evict', function (e) { delete items[JSON.parse(e.data).id]; queueRender(); });
  events.addEventListener('clear', function () { items = {}; queueRender(); });
  events.addEventListener('tunnel', function (e) { showTunnel(JSON.parse(e.data)); });
  fetch(API).then(function (res) { return res.json(); }).then(function (list) {
    list.requests.forEach(function (r) { if (!items[r.id]) items[r.id] = r; });
    queueRender();
  });
})();
`;
