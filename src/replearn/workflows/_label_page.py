"""The labelling page: plain HTML and a short script that talks to the server's JSON API (no external files)."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>replearn label</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
 .row { display: flex; gap: 2em; align-items: flex-start; flex-wrap: wrap; }
 img { image-rendering: pixelated; border: 1px solid #999; background: #000; }
 button { font-size: 1.05em; padding: 0.4em 0.8em; margin: 0.3em 0.3em 0 0; cursor: pointer; }
 h3 { margin: 0.8em 0 0.3em; } p { margin: 0.3em 0; }
 .bar { display: inline-block; height: 0.9em; background: #4a7fb5; vertical-align: middle; }
 table { border-collapse: collapse; } td { padding: 0.15em 0.6em; }
 #synthetic { color: #b00; font-weight: bold; } #error { color: #b00; }
 kbd { border: 1px solid #aaa; border-radius: 3px; padding: 0 0.3em; }
</style></head>
<body>
<h1>replearn label</h1>
<p id="synthetic"></p>
<div class="row">
 <div><div id="which">loading...</div><img id="crop" width="320" height="320" alt="the crop to label"></div>
 <div id="ctxbox" hidden><div>in the field (boxed)</div>
  <img id="context" width="320" height="320" alt="field context"></div>
 <div style="max-width: 460px">
  <div id="buttons"></div>
  <button id="skip">skip <kbd>s</kbd></button><button id="undo">undo <kbd>u</kbd></button>
  <p id="error"></p>
  <h3>Progress</h3><p id="progress"></p><table id="classes"></table>
  <h3>Classifier</h3><p id="model"></p>
  <p id="out"></p>
 </div>
</div>
<script>
const NAMES = __NAMES__;
const TOKEN = new URLSearchParams(location.search).get("token") || "";
let state = null;
const $ = (id) => document.getElementById(id);
async function call(path, body) {
  const opts = body === undefined ? {} : {method: "POST", body: JSON.stringify(body),
                                          headers: {"Content-Type": "application/json"}};
  const r = await fetch(path + "?token=" + encodeURIComponent(TOKEN), opts);
  const data = await r.json();
  if (!r.ok) { $("error").textContent = data.error; return null; }
  $("error").textContent = ""; return data;
}
function show(s) {
  if (!s) return;
  state = s;
  const done = s.next === null;
  $("which").textContent = done ? "every crop is labelled or skipped" : "crop " + s.next + " (" + s.rule + " pick)";
  if (!done) {
    $("crop").src = "/crop/" + s.next + ".png?token=" + TOKEN + "&v=" + s.version;
    if (s.context) { $("ctxbox").hidden = false; $("context").src = "/context/" + s.next + ".png?token=" + TOKEN; }
  }
  $("synthetic").textContent = s.synthetic ? "SYNTHETIC crops: not real cells" : "";
  $("progress").textContent = s.labelled + " labelled here, " + s.skipped + " skipped, " + s.remaining +
    " of " + s.pool + " left";
  $("classes").innerHTML = s.counts.map((c, k) => "<tr><td>" + s.class_names[k] + "</td><td>" + c +
    "</td><td><span class='bar' style='width:" + Math.round(200 * s.balance[k]) + "px'></span> " +
    Math.round(100 * s.balance[k]) + "%</td></tr>").join("");
  $("model").textContent = (s.cv_accuracy === null ? "accuracy: not yet (needs 2 labels in each of 2 classes)" :
    "cross-validated accuracy " + (100 * s.cv_accuracy).toFixed(1) + "% (" + s.cv_folds + "-fold)") +
    "; features: " + s.features;
  $("out").textContent = "saved after every label to " + s.out;
}
let busy = false;
async function act(kind) {
  if (!state || busy || (kind !== "undo" && state.next === null)) return;
  busy = true;
  try {
    if (kind === "undo") show(await call("/api/undo", {}));
    else if (kind === "skip") show(await call("/api/skip", {index: state.next}));
    else show(await call("/api/label", {index: state.next, stage: kind}));
  } finally { busy = false; }
}
$("buttons").innerHTML = NAMES.map((n, k) => "<button data-stage='" + k + "'>" + n + " <kbd>" + k +
  "</kbd></button>").join("<br>");
for (const b of document.querySelectorAll("[data-stage]")) b.onclick = () => act(Number(b.dataset.stage));
$("skip").onclick = () => act("skip"); $("undo").onclick = () => act("undo");
document.addEventListener("keydown", (e) => {
  if (e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
  if (/^[0-9]$/.test(e.key) && Number(e.key) < NAMES.length) act(Number(e.key));
  else if (e.key === "s") act("skip"); else if (e.key === "u") act("undo");
});
call("/api/state").then(show);
</script>
</body></html>
"""
"""``__NAMES__`` is replaced by the class names (a JSON list)."""
