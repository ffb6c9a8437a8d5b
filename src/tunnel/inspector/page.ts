// The inspector page: one self-contained document (inline style and script, no external assets), light and
// dark, usable on a phone (the list and the detail stack on a narrow screen).
import { INSPECTOR_SCRIPT } from './page-script.js';

const STYLE = `
:root{--bg:#fff;--fg:#1f2328;--muted:#656d76;--line:#d8dee4;--panel:#f6f8fa;--sel:#ddf4ff;--link:#0969da;
--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--code:#f6f8fa;--key:#953800;--str:#0a3069;--num:#0550ae}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;--line:#30363d;--panel:#161b22;
--sel:#1f3a5f;--link:#4493f8;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--code:#161b22;--key:#ffa657;--str:#a5d6ff;--num:#79c0ff}}
*{box-sizing:border-box}
html,body{height:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;display:flex;flex-direction:column}
header{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;padding:8px 12px;border-bottom:1px solid var(--line);background:var(--panel)}
header h1{font-size:15px;margin:0;font-weight:600}
header a{color:var(--link);word-break:break-all}
.pill{padding:1px 8px;border-radius:10px;font-size:12px;border:1px solid currentColor}
.pill.online{color:var(--ok)}.pill.reconnecting,.pill.connecting{color:var(--warn)}.pill.refused,.pill.stopped{color:var(--bad)}
.muted{color:var(--muted)}
.toolbar{display:flex;gap:8px;padding:8px 12px;border-bottom:1px solid var(--line)}
input,textarea,select{font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:5px 8px}
#filter{flex:1;min-width:0}
button{font:inherit;color:var(--fg);background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:5px 10px;cursor:pointer}
button:hover{border-color:var(--muted)}
button.primary{background:var(--link);border-color:var(--link);color:#fff}
main{flex:1;display:flex;min-height:0}
#list{width:46%;min-width:320px;overflow:auto;border-right:1px solid var(--line)}
#detail{flex:1;overflow:auto;padding:12px 16px}
table{width:100%;border-collapse:collapse}
#list td{padding:6px 8px;border-bottom:1px solid var(--line);white-space:nowrap;font-variant-numeric:tabular-nums}
#list td.path{white-space:normal;word-break:break-all;width:100%}
#list tr.entry{cursor:pointer}
#list tr.entry:hover{background:var(--panel)}
#list tr.entry.selected{background:var(--sel)}
.m{font-weight:600}
.s2{color:var(--ok)}.s3{color:var(--link)}.s4{color:var(--warn)}.s5,.sx{color:var(--bad)}
.tag{font-size:11px;padding:0 5px;border-radius:4px;border:1px solid var(--line);color:var(--muted);margin-left:4px}
.empty{padding:24px;color:var(--muted);text-align:center}
h2{font-size:16px;margin:0 0 4px;word-break:break-all}
h3{font-size:13px;margin:16px 0 6px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.actions{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0}
.tabs{display:flex;gap:4px;border-bottom:1px solid var(--line);margin-top:12px}
.tabs button{border:none;border-bottom:2px solid transparent;border-radius:0;background:none}
.tabs button.on{border-bottom-color:var(--link);font-weight:600}
.headers td{padding:3px 8px 3px 0;vertical-align:top;word-break:break-all}
.headers td:first-child{color:var(--muted);white-space:nowrap;word-break:normal}
.views{display:flex;gap:4px;margin:6px 0}
.views button{padding:2px 8px;font-size:12px}
.views button.on{background:var(--sel)}
pre{background:var(--code);border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;margin:0;font:12px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all}
.j-key{color:var(--key)}.j-str{color:var(--str)}.j-num{color:var(--num)}
.note{font-size:12px;color:var(--warn);margin:4px 0}
form.edit{display:grid;gap:8px;margin:10px 0;padding:10px;border:1px solid var(--line);border-radius:6px}
form.edit .row{display:flex;gap:8px}
form.edit textarea{width:100%;min-height:90px;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
#back{display:none}
@media (max-width:800px){main{flex-direction:column}#list{width:100%;min-width:0;border-right:none;flex:1}
#detail{display:none}body.showing #list{display:none}body.showing #detail{display:block}body.showing #back{display:inline-block}
#list td.dur,#list td.size{display:none}}
`;

export const INSPECTOR_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>nodecaddy tunnel inspector</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>nodecaddy tunnel</h1>
<span id="state" class="pill">…</span>
<a id="url" href="#" target="_blank" rel="noreferrer"></a>
<span id="target" class="muted"></span>
<span id="traffic" class="muted"></span>
</header>
<div class="toolbar">
<button id="back" type="button">← List</button>
<input id="filter" type="search" placeholder="Filter: path, method, status…" autocomplete="off">
<button id="clear" type="button" title="Forget every captured request">Clear</button>
</div>
<main>
<div id="list"><table><tbody id="rows"></tbody></table><div id="none" class="empty">Waiting for requests…</div></div>
<section id="detail"><div class="empty">Select a request to see it in full.</div></section>
</main>
<script>${INSPECTOR_SCRIPT}</script>
</body>
</html>
`;
