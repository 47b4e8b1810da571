// socialcredit explorer: every page is drawn here from the JSON API (no framework, no CDN).
"use strict";

const body = document.body;
const content = () => document.getElementById("content");

// -- small helpers -----------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const enc = encodeURIComponent;
const fmt = (n) => (n === null || n === undefined ? "–" : typeof n === "number" ? n.toLocaleString("en") : String(n));
const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + " %");
const words = (s) => (s === null || s === undefined ? "" : String(s).replace(/_/g, " "));

function setTitle(text) {
  document.getElementById("title").textContent = text;
  document.title = text + " · socialcredit explorer";
}

function say(text, kind) {
  const m = document.getElementById("message");
  m.textContent = text || "";
  m.className = "message" + (kind ? " " + kind : "");
}

async function api(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : res.status + " " + res.statusText;
    throw new Error(detail);
  }
  return data;
}

function fail(err) {
  say(err.message || String(err), "error");
  const c = content();
  if (c.querySelector(".loading")) c.replaceChildren();
}

function table(headers, rows, attrs) {
  return el("table", attrs || {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c)))))));
}

function select(name, options, value, label) {
  const s = el("select", { name, id: "f-" + name },
    options.map(([v, t]) => el("option", { value: v, selected: String(v) === String(value ?? "") }, t)));
  return el("label", {}, label + " ", s);
}

function input(name, value, label, attrs) {
  return el("label", {}, label + " ", el("input", Object.assign({ name, id: "f-" + name, value: value ?? "" }, attrs || {})));
}

function plot(div, fig) {
  if (!window.Plotly) { div.textContent = "Plotly.js did not load."; return; }
  if (!fig || !fig.data || fig.data.length === 0) {
    if (window.Plotly) window.Plotly.purge(div);
    div.style.height = "";
    div.replaceChildren(el("p", { class: "empty" }, (fig && fig.layout && fig.layout.title && fig.layout.title.text ? fig.layout.title.text + ": " : "") + "nothing to show for this selection."));
    return;
  }
  // the container holds the figure's height, so a responsive resize keeps it
  div.style.height = ((fig.layout && fig.layout.height) || 360) + "px";
  const layout = Object.assign({}, fig.layout, { autosize: true });
  delete layout.height;
  window.Plotly.react(div, fig.data, layout, { responsive: true, displaylogo: false });
}

// a waiting line and dimmed contents while a slow request runs (text null: done)
function busy(line, what, text) {
  line.textContent = text || "";
  line.hidden = !text;
  if (what) what.classList.toggle("busy", !!text);
}

// "CSV · Parquet" links of a download endpoint (path without the suffix, query string)
function downloadLinks(path, qs) {
  const q = qs ? "?" + qs : "";
  return [el("a", { href: path + ".csv" + q, download: "", class: "download" }, "CSV"), " · ",
    el("a", { href: path + ".parquet" + q, download: "", class: "download" }, "Parquet")];
}

function params() { return new URLSearchParams(window.location.search); }

function policyText(r) {
  // the policy's name lists its reforms; one given as a path is named by its file's stem
  const stem = (x) => x.split(/[\\/]/).pop().replace(/\.ya?ml$/, "");
  const extra = (r.reforms || []).filter((x) => !(r.policy || "").split("+").includes(stem(x)));
  return (r.policy || "") + (extra.length ? " + " + extra.join(", ") : "");
}

function replaceQuery(values) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  history.replaceState(null, "", window.location.pathname + (s ? "?" + s : ""));
}

function runNav(run, here) {
  const base = "/runs/" + enc(run);
  const links = [["overview", base, "Overview"], ["lists", base + "/lists", "Lists"], ["policy", base + "/policy", "Policy"], ["compare", "/compare?a=" + enc(run), "Compare"]];
  return el("nav", { class: "runnav" }, el("span", { class: "runid" }, run), links.map(([k, href, t]) => el("a", { href, class: k === here ? "here" : null }, t)));
}

// -- runs --------------------------------------------------------------------------------------

async function pageRuns() {
  setTitle("Runs in " + (body.dataset.folder || "the folder"));
  const runs = await api("/api/runs");
  const c = content();
  c.replaceChildren();
  if (runs.length === 0) {
    c.append(el("p", {}, "No runs here yet. Make one with ", el("code", {}, "socialcredit run --ledger"), " and reload."));
    body.dataset.ready = "1";
    return;
  }
  const rows = runs.map((r) => {
    const h = r.headline || {};
    const lists = Object.entries(h.lists || {}).filter(([, n]) => n > 0).map(([k, n]) => words(k) + " " + fmt(n)).join(", ");
    return [
      el("a", { href: "/runs/" + enc(r.id), class: "run-link" }, r.id),
      r.scenario || "",
      r.start + " – " + r.end,
      fmt(r.citizens) + " citizens, " + fmt(r.businesses) + " businesses",
      policyText(r),
      r.ledger ? "yes" : "no",
      fmt(h.denied) + " denied (" + pct(h.wrongful_share) + " wrongful)",
      pct(h.false_share),
      lists,
    ];
  });
  c.append(table(["run", "scenario", "dates", "population", "policy", "ledger", "decisions", "false records", "on lists (last day)"], rows, { id: "runs" }));
  if (runs.length > 1) {
    const opts = runs.map((r) => [r.id, r.id]);
    const form = el("form", { class: "filters", action: "/compare", method: "get" },
      select("a", opts, runs[0].id, "Compare"), select("b", opts, runs[1].id, "with"), el("button", { type: "submit" }, "Compare"));
    c.append(el("h2", {}, "Compare two runs"), form);
  }
  body.dataset.ready = "1";
}

// -- overview ----------------------------------------------------------------------------------

const FIGURES = [["scores", "Score distributions"], ["grades", "Grade shares"], ["lists", "List sizes over time"],
  ["decisions", "Decisions by service and outcome"], ["throttled", "Throttled connections"], ["wrongful", "Wrongful decisions by channel"], ["disparity", "Disparity by group"]];

async function pageOverview() {
  const run = body.dataset.run;
  const c = content();
  const info = await api("/api/runs/" + enc(run));
  setTitle("Run " + run);
  c.replaceChildren(runNav(run, "overview"));
  const h = info.headline || {};
  const sc = (info.manifest && info.manifest.scenario) || {};
  c.append(el("p", { class: "lead" }, sc.description || ""));
  const facts = [
    ["scenario", info.scenario], ["dates", info.start + " – " + info.end + " (" + fmt(info.days) + " days)"],
    ["citizens", fmt(info.citizens)], ["businesses", fmt(info.businesses)],
    ["policy", policyText(info)],
    ["seed", info.seed], ["records", fmt(h.records) + " (" + pct(h.false_share) + " false)"],
    ["decisions", fmt(h.decisions) + ": " + fmt(h.denied) + " denied, " + fmt(h.fast_tracked) + " fast-tracked"],
    h.throttled ? ["wrongful decisions", fmt(h.wrongful) + " (" + pct(h.wrongful_share) + " of denials and throttles)"]
      : ["wrongful denials", fmt(h.wrongful) + " (" + pct(h.wrongful_share) + " of denials)"],
    ...(h.throttled_days ? [["throttled connections", fmt(h.throttled_days) + " subject-days (" + fmt(h.throttled) + " requests granted throttled)"]] : []),
    ["ledger", info.ledger ? "yes: subjects' credit files and lists can be browsed" : "no (make the run with --ledger to browse subjects from the ledger)"],
  ];
  c.append(el("dl", { class: "facts", id: "headline" }, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "–")])));
  c.append(el("p", { class: "downloads", id: "downloads" }, "Download the run's tables (at most 1,000,000 rows each): ",
    (info.tables || []).map((t, i) => [i ? "; " : "", words(t) + " ", downloadLinks("/api/runs/" + enc(run) + "/tables/" + enc(t))])));

  const lookup = el("form", { class: "filters lookup", id: "lookup" },
    input("subject", "", "Look up a subject", { placeholder: "citizen or business id, or USCC", size: 28, required: true }),
    el("button", { type: "submit" }, "Open credit file"));
  lookup.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = lookup.querySelector("input").value.trim();
    if (v) window.location.href = "/runs/" + enc(run) + "/subjects/" + enc(v);
  });
  c.append(lookup);

  const p = params();
  const regions = [["", "every region"]].concat(info.manifest.population.regions.map((r) => [r.id, r.name || r.id]));
  const groups = Object.entries(info.groups || {}).map(([k, v]) => [k, v]);
  const filters = el("form", { class: "filters", id: "filters" },
    select("region", regions, p.get("region") || "", "Region"),
    select("group", groups, p.get("group") || "all", "Group"),
    input("start", p.get("start") || info.start, "From", { type: "date", min: info.start, max: info.end }),
    input("end", p.get("end") || info.end, "to", { type: "date", min: info.start, max: info.end }),
    el("button", { type: "submit" }, "Apply"));
  c.append(filters);
  const grid = el("div", { class: "grid", id: "figures" }, FIGURES.map(([k, t]) => el("div", { class: "figure", id: "fig-" + k, "data-title": t })));
  const notes = el("ul", { class: "notes", id: "notes" });
  const disparity = el("div", { id: "disparity-table" });
  const validation = el("div", { id: "validation-table" });
  const waiting = el("p", { class: "loading", id: "loading", role: "status" });
  c.append(waiting, grid, disparity, validation, notes);

  async function draw() {
    const f = new FormData(filters);
    const q = { region: f.get("region"), group: f.get("group"), start: f.get("start"), end: f.get("end") };
    replaceQuery(q);
    const qs = new URLSearchParams(Object.entries(q).filter(([, v]) => v)).toString();
    say("");
    body.dataset.ready = "0";
    busy(waiting, grid, "Loading the charts… (a few seconds on a large run)");
    try {
      const ov = await api("/api/runs/" + enc(run) + "/overview?" + qs);
      for (const [k] of FIGURES) plot(document.getElementById("fig-" + k), ov.figures[k]);
      notes.replaceChildren(...ov.notes.map((n) => el("li", {}, n)));
      disparity.replaceChildren(ov.disparity.length ? table(["group", "subjects", "decisions", "denied per 100", "wrongful per 100 denials", "on a list per 1,000"],
        ov.disparity.map((r) => [r.label, fmt(r.subjects), fmt(r.decisions), fmt(r.denied_per_100_decisions), fmt(r.wrongful_per_100_denials), fmt(r.listed_per_1000)]), { class: "compact" }) : "");
      const share = (v, u) => (v === null || v === undefined) ? "–" : (u === "share" ? (100 * v).toFixed(2) + " %" : fmt(Math.round(v)));
      validation.replaceChildren(...(ov.validation.length ? [el("h2", {}, "Model against published figures"),
        table(["figure", "date", "published", "model", "ratio", "within", "use"],
          ov.validation.map((r) => [r.figure, r.date, share(r.published, r.unit), share(r.model, r.unit),
            r.ratio === null ? "–" : r.ratio.toFixed(2), (r.within ? "yes" : "no") + " (±" + Math.round(100 * r.tolerance) + " %)", r.use]), { class: "compact" }),
        el("div", { class: "figure", id: "fig-validation" })] : []));
      if (ov.validation_figure) plot(document.getElementById("fig-validation"), ov.validation_figure);
      body.dataset.ready = "1";
    } catch (err) { fail(err); } finally { busy(waiting, grid, null); }
  }
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); draw(); });
  await draw();
}

// -- a subject's credit file -------------------------------------------------------------------

function describe(e) {
  switch (e.type) {
    case "act": return ["act", "Did: " + words(e.act), e.category ? words(e.category) + (e.obligation ? (e.met_at_once ? ", creates an obligation, met the same day" : ", creates an obligation") : "") : ""];
    case "record": return ["record", "Recorded: " + words(e.act) + " by " + words(e.channel), [e.true_record ? "" : "FALSE RECORD", e.delayed ? "delayed" : "", e.corroborating ? "corroborating (no points)" : ""].filter(Boolean).join(", ")];
    case "points": return ["points", (e.points > 0 ? "+" : "") + e.points + " points → " + e.score, e.rule + (e.false_record ? " (from a false record)" : "")];
    case "grade": return ["grade", "Grade " + words(e.from) + " → " + words(e.to), e.honest && e.honest !== e.to ? "without false records: " + words(e.honest) : (e.as_of === "snapshot" ? "as of the monthly snapshot" : "")];
    case "override": return ["grade", "Grade overridden to " + words(e.grade), words(e.act) + " until " + e.until];
    case "list": return ["list", LIST_EVENTS[e.event] ? LIST_EVENTS[e.event] + words(e.list) : words(e.event) + " " + words(e.list), e.reason + (e.false_caused ? " (caused by a false record)" : "")];
    case "decision": {
      const via = e.via ? " through " + e.via.relation + " (" + e.via.subject_id + ")" : "";
      return ["decision", words(e.service) + ": " + words(e.outcome) + (e.throttled ? ", throttled" : ""), (e.measure ? words(e.measure) + (e.trigger ? ", " + e.trigger : "") + via : "") + (e.wrongful ? " WRONGFUL" : "")];
    }
    case "restriction": return ["restriction", e.event === "start" ? words(e.service) + " connection throttled" : words(e.service) + " connection restored",
      e.event === "start" ? words(e.measure || "") + ", while its trigger holds" + (e.wrongful ? " WRONGFUL" : "") : (e.days !== undefined && e.days !== null ? "after " + fmt(e.days) + " days; " : "") + "the trigger no longer holds"];
    case "objection": return ["appeal", "Objected to a record of " + words(e.act), words(e.channel) + (e.true_record ? "" : " (a false record)")];
    case "appeal": return ["appeal", "Appeal " + (e.won ? "won" : "lost") + ": " + words(e.act), words(e.channel) + (e.true_record ? "" : " (a false record)")];
    case "repayment": return ["act", "Met an obligation", fmt(e.open_obligations) + " still open"];
    case "income": return ["act", "Income band " + words(e.from) + " → " + words(e.to), ""];
    default: return ["other", words(e.type), ""];
  }
}

const LIST_EVENTS = { enter: "Entered the list ", extend: "Term extended on the list ", exit: "Left the list " };

function listsText(lists) {
  if (!lists || lists.length === 0) return "none";
  return lists.map((l) => words(typeof l === "string" ? l : l.list) + (l.false_caused ? " (false-caused)" : "")).join(", ");
}

async function pageSubject() {
  const run = body.dataset.run, subject = body.dataset.subject;
  const p = params();
  const source = p.get("source") || "auto";
  const c = content();
  const f = await api("/api/runs/" + enc(run) + "/subjects/" + enc(subject) + "?source=" + enc(source));
  const kind = f.kind === "business" ? "Business" : "Citizen";
  setTitle(kind + " " + f.subject_id + (f.uscc ? " · " + f.uscc : ""));
  c.replaceChildren(runNav(run, "subject"));
  const a = f.attributes || {};
  const skip = new Set(["subject_id", "kind", "group", "household", "represents", "region_name", "household_first_member", "uscc"]);
  skip.add("employer");
  const attrs = Object.entries(a).filter(([k, v]) => !skip.has(k) && v !== null && typeof v !== "object");
  const facts = [["region", a.region_name || a.region || ""]].concat(attrs.filter(([k]) => k !== "region").map(([k, v]) => [words(k), typeof v === "boolean" ? (v ? "yes" : "no") : words(v)]));
  if (a.household) facts.push(["household", a.household.map((m) => m.subject_id + " (" + m.age_band + ")").join(", ")]);
  if (a.represents && a.represents.length) facts.push(["legal representative of", a.represents.map((b) => b.subject_id + " " + b.uscc).join(", ")]);
  if ("employer" in a) facts.push(["employer", a.employer ? a.employer.subject_id + " " + a.employer.uscc : "none"]);
  c.append(el("dl", { class: "facts", id: "attributes" }, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));

  // a run made without --ledger has no ledger to read the file from: say so, link nothing
  const fromLedger = f.ledger
    ? el("a", { href: "?source=ledger", class: f.source === "ledger" ? "here" : null }, "the run's ledger")
    : el("span", { class: "none", id: "no-ledger" }, "the run's ledger (none: the run was made without --ledger)");
  const sources = el("p", { class: "sources" }, "Source: ", fromLedger, " · ",
    el("a", { href: "?source=replay", class: f.source === "replay" ? "here" : null }, "replayed from the seed (adds acts, objections, appeals and causes)"));
  c.append(sources);
  if (f.ledger) {
    const base = "/api/runs/" + enc(run) + "/tables/";
    const qs = "subject=" + enc(f.subject_id);
    c.append(el("p", { class: "downloads", id: "downloads" }, "Download this subject's rows: ",
      ["records", "ledger", "list_events", "decisions", "restrictions", "snapshots", "subjects"].filter((t) => (f.tables || []).length === 0 || f.tables.includes(t)).map((t, i) => [i ? "; " : "", words(t) + " ", downloadLinks(base + t, qs)])));
  }

  const st = f.at_start || {}, en = f.at_end || {};
  // listed before the reported days: the burn-in entry that put the subject there (replay)
  if (st.listed_in_burn_in && st.listed_in_burn_in.length) {
    c.append(el("div", { class: "note", id: "burn-in" }, el("h3", {}, "Listed during the burn-in"),
      el("ul", {}, st.listed_in_burn_in.map((e) => el("li", {}, "on " + words(e.list) + " since " + e.day + ": " + e.reason + (e.reference ? " (" + e.reference + ")" : "") + (e.false_caused ? ", caused by a false record" : "") +
        (e.records.length ? "; that day's records: " + e.records.map((r) => words(r.act) + " seen by " + words(r.channel) + (r.true_record ? "" : " (false)")).join("; ") : ""))))));
  } else if (f.source === "ledger" && st.lists && st.lists.length) {
    c.append(el("p", { class: "note", id: "burn-in" }, "Listed before the reported days: the ledger does not hold the burn-in; ",
      el("a", { href: "?source=replay" }, "the replay"), " shows which rule and record put the subject on the list."));
  }
  c.append(el("div", { class: "cards" },
    el("div", { class: "card" }, el("h3", {}, "On " + f.period.start), el("p", {}, "score " + fmt(st.score) + ", grade " + words(st.grade ?? "–") + (st.grade_as_of && st.grade_as_of !== f.period.start ? " (as of the snapshot of " + st.grade_as_of + ")" : "")), el("p", {}, "lists: " + listsText(st.lists)),
      st.throttled_since ? el("p", {}, "connection throttled since " + st.throttled_since) : ""),
    el("div", { class: "card" }, el("h3", {}, "On " + f.period.end), el("p", {}, "score " + fmt(en.score) + ", grade " + words(en.grade ?? "–")), el("p", {}, "lists: " + listsText(en.lists)),
      en.throttled_since ? el("p", {}, "connection throttled since " + en.throttled_since) : ""),
    el("div", { class: "card", id: "summary" }, el("h3", {}, "In the period"), el("p", {},
      Object.entries(f.summary || {}).filter(([, v]) => v).map(([k, v]) => words(k) + " " + fmt(v)).join(" · ") || "nothing recorded"))));

  // the score over time: snapshots and every point change
  const pts = [];
  for (const d of f.days) for (const e of d.events) if (e.type === "points") pts.push([d.day, e.score]);
  for (const s of f.scores || []) if (s.grade !== "none") pts.push([s.day, s.score]);
  if (pts.length && st.score !== null && st.score !== undefined) pts.push([f.period.start, st.score]);
  if (pts.length && en.score !== null && en.score !== undefined) pts.push([f.period.end, en.score]);
  pts.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  if (pts.length) {
    const div = el("div", { class: "figure wide", id: "fig-score" });
    c.append(div);
    plot(div, { data: [{ type: "scatter", mode: "lines+markers", line: { shape: "hv" }, x: pts.map((q) => q[0]), y: pts.map((q) => q[1]), name: "score" }],
      layout: { title: { text: "Score", x: 0, font: { size: 15 } }, height: 260, margin: { l: 50, r: 20, t: 40, b: 40 }, template: "plotly_white" } });
  }

  // the timeline
  const types = ["act", "record", "points", "grade", "list", "decision", "restriction", "appeal"];
  const TYPE_LABELS = { act: "acts", record: "records", points: "points", grade: "grades", list: "lists", decision: "decisions", restriction: "restrictions", appeal: "objections and appeals" };
  const shown = new Set(types);
  let grants = false;
  const controls = el("form", { class: "filters", id: "timeline-filters" },
    types.map((t) => el("label", { class: "check" }, el("input", { type: "checkbox", checked: true, value: t, onchange: (ev) => { if (ev.target.checked) shown.add(t); else shown.delete(t); draw(); } }), " " + TYPE_LABELS[t])),
    el("label", { class: "check" }, el("input", { type: "checkbox", id: "show-grants", onchange: (ev) => { grants = ev.target.checked; draw(); } }), " plain grants"));
  const holder = el("div", { id: "timeline" });
  c.append(el("h2", {}, "Timeline"), controls, holder);
  if (f.truncated && f.truncated.length) c.append(el("p", { class: "note" }, "The history is cut at 5,000 rows of: " + f.truncated.join(", ")));
  if (f.not_in_ledger) c.append(el("p", { class: "note" }, "The ledger does not hold " + f.not_in_ledger.join(", ") + "; the replay does."));

  function draw() {
    const rows = [];
    let hidden = 0;
    for (const d of f.days) {
      for (const e of d.events) {
        const [cls, what, detail] = describe(e);
        if (!shown.has(cls) && !(cls === "other")) continue;
        if (e.type === "decision" && e.outcome === "granted" && !e.measure && !grants) { hidden++; continue; }
        const flag = (e.type === "record" && !e.true_record) || e.wrongful || e.false_caused || e.false_record;
        rows.push(el("tr", { class: "ev ev-" + cls + (flag ? " flag" : "") },
          el("td", { class: "day" }, d.day), el("td", {}, el("span", { class: "badge " + cls }, cls)), el("td", {}, what), el("td", {}, detail), el("td", { class: "ref" }, e.reference || "")));
      }
    }
    const t = el("table", { class: "timeline" }, el("thead", {}, el("tr", {}, ["day", "", "what", "details", "reference"].map((h) => el("th", {}, h)))), el("tbody", {}, rows));
    holder.replaceChildren(rows.length ? t : el("p", { class: "empty" }, "No events of these kinds in the period."),
      hidden ? el("p", { class: "note" }, hidden + " plain grants of services are hidden.") : "");
  }
  draw();
  body.dataset.ready = "1";
}

// -- lists -------------------------------------------------------------------------------------

async function pageLists() {
  const run = body.dataset.run;
  const c = content();
  const info = await api("/api/runs/" + enc(run));
  setTitle("Lists of " + run);
  c.replaceChildren(runNav(run, "lists"));
  const p = params();
  const lists = info.lists.map((n) => [n, words(n)]);
  const regions = [["", "every region"]].concat(info.manifest.population.regions.map((r) => [r.id, r.name || r.id]));
  const form = el("form", { class: "filters", id: "filters" },
    select("list", lists, p.get("list") || (lists[0] || [""])[0], "List"),
    input("date", p.get("date") || info.end, "on", { type: "date", min: info.start, max: info.end }),
    select("region", regions, p.get("region") || "", "Region"),
    select("kind", [["", "citizens and businesses"], ["citizen", "citizens"], ["business", "businesses"]], p.get("kind") || "", "Who"),
    select("false_caused", [["", "any cause"], ["true", "caused by a false record"], ["false", "not caused by a false record"]], p.get("false_caused") || "", "Cause"),
    el("button", { type: "submit" }, "Show"));
  const counts = el("div", { id: "counts" });
  const holder = el("div", { id: "members" });
  c.append(form, counts, holder);
  let page = Number(p.get("page") || 1);

  async function draw() {
    const fd = new FormData(form);
    const q = { list: fd.get("list"), date: fd.get("date"), region: fd.get("region"), kind: fd.get("kind"), false_caused: fd.get("false_caused"), page: String(page) };
    replaceQuery(q);
    say("");
    body.dataset.ready = "0";
    try {
      const summary = await api("/api/runs/" + enc(run) + "/lists?date=" + enc(q.date));
      counts.replaceChildren(el("p", { class: "lead" }, "On " + summary.date + ": ",
        summary.lists.map((l, i) => [i ? " · " : "", el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); form.querySelector("#f-list").value = l.list; page = 1; draw(); } }, words(l.list)), " " + fmt(l.subjects) + " (" + l.kind + ")"])));
      if (!info.ledger) { holder.replaceChildren(el("p", { class: "note" }, "The run has no ledger, so who is on a list cannot be shown; make it again with --ledger.")); body.dataset.ready = "1"; return; }
      const qs = new URLSearchParams(Object.entries(q).filter(([k, v]) => v && k !== "list")).toString();
      const r = await api("/api/runs/" + enc(run) + "/lists/" + enc(q.list) + "?" + qs + "&page_size=50");
      const rows = r.members.map((m) => [el("a", { href: "/runs/" + enc(run) + "/subjects/" + m.subject_id }, String(m.subject_id)), m.kind, m.uscc || "", m.region, m.since || "before " + info.start, m.reason || "", m.false_caused ? "yes" : ""]);
      const nav = el("p", { class: "pager" },
        el("button", { type: "button", disabled: r.page <= 1, onclick: () => { page = r.page - 1; draw(); } }, "← previous"),
        " page " + r.page + " of " + r.pages + " (" + fmt(r.total) + " on " + words(r.list) + " on " + r.date + ") ",
        el("button", { type: "button", disabled: r.page >= r.pages, onclick: () => { page = r.page + 1; draw(); } }, "next →"));
      const all = new URLSearchParams(Object.entries(q).filter(([k, v]) => v && k !== "list" && k !== "page")).toString();
      const down = el("p", { class: "downloads", id: "downloads" }, "Download everyone in this selection, with their demographics: ",
        downloadLinks("/api/runs/" + enc(run) + "/lists/" + enc(q.list) + "/members", all));
      holder.replaceChildren(nav, rows.length ? table(["subject", "kind", "USCC", "region", "since", "reason", "false-caused"], rows, { id: "members-table" }) : el("p", { class: "empty" }, "Nobody in this selection."), down);
      body.dataset.ready = "1";
    } catch (err) { fail(err); }
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); page = 1; draw(); });
  await draw();
}

// -- policy ------------------------------------------------------------------------------------

async function pagePolicy() {
  const run = body.dataset.run;
  const c = content();
  const info = await api("/api/runs/" + enc(run));
  setTitle("Policy of " + run);
  c.replaceChildren(runNav(run, "policy"));
  const p = params();
  const regions = info.manifest.population.regions.map((r) => [r.id, r.name || r.id]);
  const form = el("form", { class: "filters", id: "filters" },
    select("region", regions, p.get("region") || regions[0][0], "Region"),
    input("date", p.get("date") || info.start, "on", { type: "date", min: info.start, max: info.end }),
    el("button", { type: "submit" }, "Show"));
  const holder = el("div", { id: "policy" });
  c.append(form, holder);

  async function draw() {
    const fd = new FormData(form);
    const q = { region: fd.get("region"), date: fd.get("date") };
    replaceQuery(q);
    say("");
    try {
      const pol = await api("/api/runs/" + enc(run) + "/policy?" + new URLSearchParams(q).toString());
      const parts = [el("p", { class: "lead" }, pol.name + " (layers: " + pol.layers.join(" > ") + ") in " + pol.region + " on " + pol.date)];
      for (const s of pol.sections) {
        parts.push(el("h2", {}, s.title));
        parts.push(table(["rule", "values", "reference", "source"], s.items.map((it) => [
          el("span", {}, it.id, it.mandatory ? el("span", { class: "badge mandatory", title: "a regional extension cannot change it" }, "mandatory") : "", it.verified ? "" : el("span", { class: "badge unverified" }, "unverified")),
          Object.entries(it.fields).filter(([, v]) => v !== "").map(([k, v]) => words(k) + ": " + v).join("; "),
          it.reference, (it.source || "") + (it.origin ? " (" + it.origin + ")" : "")]), { class: "compact rules" }));
      }
      parts.push(el("h2", { id: "audit" }, "Rights audit"));
      if (pol.audit === null) parts.push(el("p", { class: "note" }, "This version of socialcredit has no rights audit."));
      else if (pol.audit.length === 0) parts.push(el("p", {}, "No findings."));
      else parts.push(table(["rule", "rights", "severity", "why"], pol.audit.map((f) => [f.rule, (f.rights || []).join(", "), f.severity, f.why]), { class: "compact" }));
      holder.replaceChildren(...parts);
      body.dataset.ready = "1";
    } catch (err) { fail(err); }
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); draw(); });
  await draw();
}

// -- compare -----------------------------------------------------------------------------------

async function pageCompare() {
  setTitle("Compare two runs");
  const c = content();
  const runs = await api("/api/runs");
  c.replaceChildren();
  if (runs.length === 0) { c.append(el("p", {}, "No runs to compare.")); return; }
  const p = params();
  const opts = runs.map((r) => [r.id, r.id]);
  const form = el("form", { class: "filters", id: "filters" },
    select("a", opts, p.get("a") || runs[0].id, "Run A"),
    select("b", opts, p.get("b") || (runs[1] || runs[0]).id, "run B"),
    select("kind", [["citizen", "citizens"], ["business", "businesses"]], p.get("kind") || "citizen", "Who"),
    input("region", p.get("region") || "", "Region", { placeholder: "every region", size: 12 }),
    el("button", { type: "submit" }, "Compare"));
  const holder = el("div", { id: "comparison" });
  const waiting = el("p", { class: "loading", id: "loading", role: "status" });
  c.append(form, waiting, holder);

  async function draw() {
    const fd = new FormData(form);
    const q = { a: fd.get("a"), b: fd.get("b"), kind: fd.get("kind"), region: fd.get("region") };
    replaceQuery(q);
    say("");
    busy(waiting, holder, "Comparing the two runs subject by subject… (a few seconds on a large run)");
    try {
      const qs = new URLSearchParams(Object.entries({ kind: q.kind, region: q.region }).filter(([, v]) => v)).toString();
      const r = await api("/api/compare/" + enc(q.a) + "/" + enc(q.b) + "?" + qs);
      const parts = [table(["", "A: " + r.a.id, "B: " + r.b.id], [
        ["scenario", r.a.scenario, r.b.scenario], ["policy", policyText(r.a), policyText(r.b)],
        ["dates", r.a.start + " – " + r.a.end, r.b.start + " – " + r.b.end], ["seed", r.a.seed, r.b.seed]], { class: "compact" })];
      parts.push(el("h2", {}, "Headline figures"));
      parts.push(table(["figure", "A", "B", "B − A"], r.headline.map((h) => [words(h.figure), fmt(h.a), fmt(h.b), typeof h.a === "number" && typeof h.b === "number" ? fmt(h.b - h.a) : ""]), { class: "compact", id: "headline" }));
      parts.push(el("h2", {}, "Grade transitions"));
      if (r.note) parts.push(el("p", { class: "note" }, r.note));
      const div = el("div", { class: "figure wide", id: "fig-transition" });
      if (r.transition) parts.push(el("p", {}, fmt(r.transition.changed) + " of " + fmt(r.transition.subjects) + " subjects have another grade in B."), div);
      const subj = r.analysis && r.analysis.subjects;
      if (subj && subj.available) {
        parts.push(el("h2", {}, "Subjects whose story differs"));
        parts.push(el("p", { class: "downloads", id: "downloads" }, "Download every one of them, with demographics and figures in A and B: ",
          downloadLinks("/api/compare/" + enc(q.a) + "/" + enc(q.b) + "/changed")));
        parts.push(el("p", {}, fmt(subj.changed) + " subjects (" + fmt(subj.changed_citizens) + " citizens, " + fmt(subj.changed_businesses) + " businesses) have another story in B, on the same random numbers" + (subj.changed_sample && subj.changed_sample.length ? "; for example " : "."),
          (subj.changed_sample || []).map((sid, i) => [i ? ", " : "", el("a", { href: "/runs/" + enc(q.a) + "/subjects/" + sid }, String(sid))])));
        if (subj.lists && subj.lists.length) parts.push(table(["list", "entered in B only", "left (or never entered) in B", "by rule"], subj.lists.map((l) => [words(l.list), fmt(l.entered), fmt(l.left),
          l.entered_by_rule.concat(l.left_by_rule).map((x) => x.rule + " (" + fmt(x.subjects) + ")").join("; ")]), { class: "compact", id: "list-moves" }));
        if (subj.rules && subj.rules.length) parts.push(table(["rule", "subjects in A", "subjects in B", "points in A", "points in B"], subj.rules.slice(0, 20).map((x) => [x.rule, fmt(x.subjects_a), fmt(x.subjects_b), fmt(x.points_a), fmt(x.points_b)]), { class: "compact", id: "rule-diff" }));
      }
      holder.replaceChildren(...parts);
      if (r.transition) plot(div, r.transition.figure);
      body.dataset.ready = "1";
    } catch (err) { fail(err); } finally { busy(waiting, holder, null); }
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); draw(); });
  await draw();
}

// -- the API page: every operation of /openapi.json, with a form to try it ---------------------

function schemaText(s) {
  if (!s) return "";
  if (s.$ref) return s.$ref.split("/").pop();
  if (s.anyOf) return s.anyOf.map(schemaText).join(" or ");
  if (s.type === "array") return "list of " + (schemaText(s.items) || "values");
  if (s.enum) return s.enum.join(" | ");
  return (s.type || "object") + (s.pattern ? " (" + s.pattern + ")" : "");
}

function operationView(path, method, op) {
  const params = op.parameters || [];
  const out = el("pre", { class: "try-out", hidden: true });
  const fields = params.map((p) => input("op-" + (op.operationId || path) + "-" + p.name, "", p.name + (p.required ? " *" : ""), { "data-name": p.name, "data-in": p.in }));
  const form = el("form", { class: "try" }, fields, el("button", { type: "submit" }, method.toUpperCase()));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let url = path;
    const q = new URLSearchParams();
    for (const f of form.querySelectorAll("input")) {
      if (f.dataset.in === "path") url = url.replace("{" + f.dataset.name + "}", enc(f.value));
      else if (f.value !== "") q.set(f.dataset.name, f.value);
    }
    if (q.toString()) url += "?" + q;
    out.hidden = false;
    out.textContent = "GET " + url + " …";
    const res = await fetch(url, { headers: { Accept: "application/json" } });
    const text = await res.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { shown = text; }
    out.textContent = "GET " + url + " → " + res.status + "\n" + (shown.length > 20000 ? shown.slice(0, 20000) + "\n…" : shown);
  });
  const responses = Object.entries(op.responses || {}).map(([code, r]) => {
    const media = (r.content || {})["application/json"] || {};
    return [code, r.description || "", schemaText(media.schema)];
  });
  return el("section", { class: "operation", id: "op-" + (op.operationId || path) },
    el("h3", {}, el("span", { class: "method" }, method.toUpperCase()), " ", el("code", {}, path)),
    op.summary ? el("p", { class: "summary" }, op.summary) : null,
    op.description && op.description !== op.summary ? el("p", {}, op.description) : null,
    params.length ? table(["parameter", "in", "type", "description"], params.map((p) => [p.name + (p.required ? " (required)" : ""), p.in, schemaText(p.schema), p.description || (p.schema && p.schema.description) || ""]), { class: "compact params" }) : null,
    table(["response", "description", "body"], responses, { class: "compact responses" }),
    el("details", {}, el("summary", {}, "Try it"), form, out));
}

async function pageApi() {
  const doc = await api("/openapi.json");
  const c = content();
  const info = doc.info || {};
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) if (["get", "post", "put", "delete", "patch"].includes(method)) ops.push(operationView(path, method, op));
  }
  const schemas = Object.entries((doc.components || {}).schemas || {}).map(([name, s]) =>
    el("section", { class: "schema", id: "schema-" + name }, el("h3", {}, name), s.description ? el("p", {}, s.description) : null,
      s.properties ? table(["field", "type", "description"], Object.entries(s.properties).map(([k, p]) => [k + ((s.required || []).includes(k) ? " (required)" : ""), schemaText(p), p.description || ""]), { class: "compact" }) : null));
  c.replaceChildren(
    el("p", {}, (info.title || "") + " " + (info.version || "") + " · OpenAPI " + (doc.openapi || "") + " · the JSON document: ", el("a", { href: "/openapi.json" }, "/openapi.json")),
    info.description ? el("p", {}, info.description) : null,
    el("h2", { id: "operations" }, ops.length + " operations"), el("div", { id: "ops" }, ops),
    el("h2", { id: "schemas" }, "Schemas"), el("div", { id: "schema-list" }, schemas));
  body.dataset.ready = "1";
}

// -- start -------------------------------------------------------------------------------------

const PAGES = { runs: pageRuns, overview: pageOverview, subject: pageSubject, lists: pageLists, policy: pagePolicy, compare: pageCompare, api: pageApi };

document.addEventListener("DOMContentLoaded", () => {
  const page = PAGES[body.dataset.page];
  if (!page) {
    content().replaceChildren(el("p", {}, el("a", { href: "/" }, "Back to the runs")));
    say(document.getElementById("message").textContent, "error");
    return;
  }
  page().catch(fail);
});
