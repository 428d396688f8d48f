// The unit site's stylesheet and page script (site.ts writes them to assets/). The script is plain ES2017 in one
// function, no modules: pages opened from disk (file://) load classic scripts only.
//
// What the script does: sortable columns and a search box on the index tables; on a unit page, the test box — it
// loads assets/model.js (the checkpoint and the WASM kernels as base64) and assets/box.js (src/interp/site-box.ts,
// bundled) on first use, runs the unit on the typed text and shades every byte by its score.

export const SITE_CSS = `body{font-family:system-ui,sans-serif;max-width:1180px;margin:1.5em auto;padding:0 1em}
body{color:#222}
h1{font-size:1.45em}h2{font-size:1.15em;margin-top:1.6em}a{color:#0b5cad}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}
table.units th{cursor:pointer;user-select:none}table.units th[data-dir=asc]::after{content:" ▲"}
table.units th[data-dir=desc]::after{content:" ▼"}table.units td{white-space:nowrap}
table.facts th{width:16em;font-weight:600}
.note{color:#555;font-size:13px}.count{color:#555;font-size:13px}.foot{margin-top:2em}
nav{font-size:14px;margin-bottom:.5em}.pn{margin-left:1.5em}.off{color:#aaa}
.charts{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}svg{display:block}
.effects{display:flex;gap:2em}.eff td{font-family:monospace}
.ctx{font-size:13px;margin:3px 0;line-height:1.7}.ctx code{font-size:13px;white-space:pre-wrap;word-break:break-all}
.sc{display:inline-block;width:4.5em;text-align:right;color:#555;margin-right:.6em}.lab{color:#888;margin-left:.6em}
.ctx b{font-weight:normal}.ctx b.at{outline:2px solid #222;font-weight:bold}
.s1{background:rgba(255,140,0,.11)}.s2{background:rgba(255,140,0,.22)}.s3{background:rgba(255,140,0,.33)}
.s4{background:rgba(255,140,0,.44)}.s5{background:rgba(255,140,0,.55)}.s6{background:rgba(255,140,0,.66)}
.s7{background:rgba(255,140,0,.77)}.s8{background:rgba(255,140,0,.88)}.s9{background:rgba(255,140,0,1)}
.n1{background:rgba(33,102,172,.11)}.n2{background:rgba(33,102,172,.22)}.n3{background:rgba(33,102,172,.33)}
.n4{background:rgba(33,102,172,.44)}.n5{background:rgba(33,102,172,.55)}.n6{background:rgba(33,102,172,.66)}
.n7{background:rgba(33,102,172,.77)}.n8{background:rgba(33,102,172,.88)}.n9{background:rgba(33,102,172,1)}
#box textarea{font-family:monospace;font-size:13px;width:100%;max-width:60em}.err{color:#b00020}
`;

export const SITE_JS = `(function () {
  'use strict';
  function sortable(table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, i) {
      th.addEventListener('click', function () {
        var asc = th.dataset.dir !== 'asc';
        Array.prototype.forEach.call(heads, function (h) { delete h.dataset.dir; });
        th.dataset.dir = asc ? 'asc' : 'desc';
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[i].dataset.s, y = b.cells[i].dataset.s;
          var c = th.dataset.type === 'num' ? Number(x) - Number(y) : x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  function filter(input) {
    var table = document.getElementById(input.dataset.table);
    var count = document.getElementById('n-' + input.dataset.table.slice(2));
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    input.addEventListener('input', function () {
      var q = input.value.trim().toLowerCase();
      var n = 0;
      rows.forEach(function (r) {
        var show = !q || r.textContent.toLowerCase().indexOf(q) >= 0;
        r.hidden = !show;
        if (show) n++;
      });
      count.textContent = q ? n + ' of ' + rows.length + ' units' : rows.length + ' units';
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.units'), sortable);
  Array.prototype.forEach.call(document.querySelectorAll('input.filter'), filter);

  function load(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error('could not load ' + src)); };
      document.body.appendChild(s);
    });
  }
  function runs(bytes) {
    var out = [], dec = new TextDecoder('utf-8', { fatal: true }), i = 0;
    while (i < bytes.length) {
      var b = bytes[i], len = b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1, text = null;
      if (len > 1 && i + len <= bytes.length) {
        try { text = dec.decode(new Uint8Array(bytes.slice(i, i + len))); } catch (e) { text = null; }
      }
      if (text === null) {
        len = 1;
        text = b === 10 ? '⏎' : b === 9 ? '⇥' : b >= 32 && b < 127 ? String.fromCharCode(b)
          : '\\\\x' + (b < 16 ? '0' : '') + b.toString(16);
      }
      out.push({ text: text, from: i, to: i + len });
      i += len;
    }
    return out;
  }
  var form = document.getElementById('box');
  if (!form) return;
  var status = document.getElementById('box-status');
  var out = document.getElementById('box-out');
  var loaded = null;
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    status.className = 'note';
    status.textContent = loaded ? 'running…' : 'loading the model and the WASM kernels…';
    loaded = loaded || load('../../assets/model.js').then(function () { return load('../../assets/box.js'); });
    loaded.then(function () {
      var text = document.getElementById('box-text').value;
      return window.monetSiteBox.unitScores(text, Number(form.dataset.group), Number(form.dataset.unit));
    }).then(function (r) {
      var max = Number(form.dataset.max), fired = 0, top = 0;
      r.scores.forEach(function (v) { if (v !== 0) fired++; top = Math.max(top, Math.abs(v)); });
      max = Math.max(max, top);
      out.textContent = '';
      var code = document.createElement('code');
      runs(r.bytes).forEach(function (run) {
        var v = 0;
        for (var k = run.from; k < run.to; k++) if (Math.abs(r.scores[k]) > Math.abs(v)) v = r.scores[k];
        var el = document.createElement('b');
        el.textContent = run.text;
        if (v !== 0) {
          var lvl = Math.max(1, Math.min(9, Math.round(9 * Math.abs(v) / max)));
          el.className = (v > 0 ? 's' : 'n') + lvl;
          el.title = v.toPrecision(3);
        }
        code.appendChild(el);
      });
      out.appendChild(code);
      status.textContent = 'scores at ' + fired + ' of ' + r.bytes.length + ' bytes; largest ' + top.toPrecision(3) +
        ' (' + r.engine + ')' + (r.truncated ? '; the text was cut to the model\\'s context' : '');
    }).catch(function (e) {
      status.className = 'err';
      status.textContent = String(e && e.message || e);
    });
  });
})();
`;
