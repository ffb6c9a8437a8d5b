// The built-in listing page, written in the same placeholder format a custom template uses (template.ts).
// Self-contained: inline CSS, inline SVG icons, a few lines of script; no external assets.
export const DEFAULT_TEMPLATE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{{name}}</title>
<style>
:root{--bg:#fff;--fg:#1f2328;--muted:#656d76;--line:#d8dee4;--hover:#f6f8fa;--link:#0969da;--accent:#e8a33d}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;--line:#30363d;--hover:#161b22;--link:#4493f8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header,main,footer{max-width:960px;margin:0 auto;padding:0 16px}
header{padding-top:24px}
h1{font-size:1.35rem;font-weight:600;margin:0 0 8px;word-break:break-all}
h1 a{color:var(--link);text-decoration:none}
h1 a:hover{text-decoration:underline}
h1 .sep{color:var(--muted);margin:0 2px}
.meta{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;justify-content:space-between;color:var(--muted);margin-bottom:12px}
#filter{font:inherit;padding:6px 10px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg);min-width:200px}
table{width:100%;border-collapse:collapse}
th,td{padding:8px 10px;text-align:left;border-bottom:1px solid var(--line);vertical-align:middle}
th{font-weight:600;font-size:.85rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
th a{color:inherit;text-decoration:none}
th a:hover{color:var(--fg)}
th.sorted a{color:var(--fg)}
th.sorted.asc a::after{content:" ▲";font-size:.7em}
th.sorted.desc a::after{content:" ▼";font-size:.7em}
tbody tr:hover{background:var(--hover)}
td.name a{color:var(--link);text-decoration:none;display:inline-flex;align-items:center;gap:8px;word-break:break-all}
td.name a:hover{text-decoration:underline}
td.size,th.size{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.time,th.time{white-space:nowrap;font-variant-numeric:tabular-nums}
svg.icon{width:18px;height:18px;flex:none}
.dir svg.icon{color:var(--accent)}
.file svg.icon{color:var(--muted)}
.link-mark{color:var(--muted);font-size:.8em}
footer{color:var(--muted);font-size:.8rem;padding:24px 16px}
@media (max-width:600px){th.time,td.time{display:none}#filter{width:100%}}
</style>
</head>
<body>
<svg width="0" height="0" style="position:absolute" aria-hidden="true">
<symbol id="i-dir" viewBox="0 0 24 24"><path fill="currentColor" d="M3 6.5A2.5 2.5 0 0 1 5.5 4h4.1l2 2H18.5A2.5 2.5 0 0 1 21 8.5v9a2.5 2.5 0 0 1-2.5 2.5h-13A2.5 2.5 0 0 1 3 17.5z"/></symbol>
<symbol id="i-file" viewBox="0 0 24 24"><path fill="none" stroke="currentColor" stroke-width="1.6" d="M6.5 3h7l5 5v11.5A1.5 1.5 0 0 1 17 21H6.5A1.5 1.5 0 0 1 5 19.5v-15A1.5 1.5 0 0 1 6.5 3zM13.5 3v5h5"/></symbol>
<symbol id="i-up" viewBox="0 0 24 24"><path fill="none" stroke="currentColor" stroke-width="1.8" d="M12 19V5m-6 6 6-6 6 6"/></symbol>
</svg>
<header>
<h1>{{#breadcrumbs}}<a href="{{link}}">{{text}}</a>{{^first}}<span class="sep">/</span>{{/first}}{{/breadcrumbs}}</h1>
<div class="meta">
<span class="summary">{{numDirs}} {{dirsLabel}}, {{numFiles}} {{filesLabel}}{{#limited}} (of which only {{itemsLimitedTo}} are shown){{/limited}}</span>
<input id="filter" type="search" placeholder="Filter" aria-label="Filter by name" autocomplete="off">
</div>
</header>
<main>
<table>
<thead>
<tr>
<th class="name {{columns.name.class}}" aria-sort="{{columns.name.aria}}"><a id="sort-name" href="{{columns.name.href}}">Name</a></th>
<th class="size {{columns.size.class}}" aria-sort="{{columns.size.aria}}"><a id="sort-size" href="{{columns.size.href}}">Size</a></th>
<th class="time {{columns.time.class}}" aria-sort="{{columns.time.aria}}"><a id="sort-time" href="{{columns.time.href}}">Modified</a></th>
</tr>
</thead>
<tbody>
{{#canGoUp}}<tr class="up"><td class="name"><a href=".."><svg class="icon"><use href="#i-up"/></svg>Go up</a></td><td class="size">—</td><td class="time"></td></tr>{{/canGoUp}}
{{#items}}<tr class="entry {{#isDir}}dir{{/isDir}}{{^isDir}}file{{/isDir}}" data-name="{{name}}">
<td class="name"><a href="{{url}}">{{#isDir}}<svg class="icon"><use href="#i-dir"/></svg>{{/isDir}}{{^isDir}}<svg class="icon"><use href="#i-file"/></svg>{{/isDir}}<span>{{name}}</span>{{#isSymlink}} <span class="link-mark" title="symbolic link">↪</span>{{/isSymlink}}</a></td>
<td class="size" data-order="{{#isDir}}-1{{/isDir}}{{^isDir}}{{size}}{{/isDir}}">{{humanSize}}</td>
<td class="time"><time datetime="{{modTime}}">{{modTimeText}}</time></td>
</tr>
{{/items}}
</tbody>
</table>
</main>
<footer>Served with nodecaddy</footer>
<script>
(function () {
  var f = document.getElementById('filter');
  var rows = document.querySelectorAll('tr.entry');
  f.addEventListener('input', function () {
    var q = f.value.toLowerCase();
    rows.forEach(function (r) { r.style.display = r.dataset.name.toLowerCase().indexOf(q) >= 0 ? '' : 'none'; });
  });
  document.querySelectorAll('time[datetime]').forEach(function (t) {
    var d = new Date(t.getAttribute('datetime'));
    if (!isNaN(d)) { t.title = t.textContent; t.textContent = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }); }
  });
})();
</script>
</body>
</html>
`;
