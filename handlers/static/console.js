/* policybot staff console: live queue and ticket pages (server-sent events from /console/events).
   Builds every row with textContent: no HTML is ever inserted. Without this script the pages still
   work; they only stop updating by themselves. */
(function () {
  "use strict";
  var picker = document.getElementById("canned-select");
  if (picker) {
    picker.addEventListener("change", function () {
      var box = document.getElementById("reply-text");
      if (!box || !picker.value) return;
      box.value = box.value ? box.value + "\n" + picker.value : picker.value;
      picker.value = "";
      box.focus();
    });
  }
  var live = document.querySelector("[data-live]");
  if (!live || !window.EventSource) return;
  var kind = live.getAttribute("data-live");
  var SOUND_KEY = "policybot.console.sound";
  var HEADERS = ["工单", "科室", "渠道", "问题", "状态", "已等待", "工作时间内等待"];
  var baseTitle = document.title;
  var unseen = 0;
  var known = {};
  document.querySelectorAll("#queue-body tr[data-ticket]").forEach(function (tr) {
    known[tr.getAttribute("data-ticket")] = true;
  });

  function el(name, text, cls) {
    var node = document.createElement(name);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function setState(text, ok) {
    var state = document.getElementById("live-state");
    if (!state) return;
    state.textContent = text;
    state.className = "live-state" + (ok ? "" : " live-off");
  }

  function beep() {
    var toggle = document.getElementById("sound-toggle");
    if (!toggle || !toggle.checked) return;
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      var ctx = new Ctx();
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.1;
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.25);
    } catch (e) { /* no audio on this device */ }
  }

  function resetTitle() {
    unseen = 0;
    document.title = baseTitle;
  }

  function queueRow(t) {
    var tr = el("tr");
    tr.setAttribute("data-ticket", String(t.id));
    if (t.overdue) tr.className = "overdue-row";
    var link = el("a", "#" + t.id);
    link.href = "/console/tickets/" + t.id;
    var cells = [link, t.office, t.channel, el("span", t.question, "question"), t.status, t.waiting,
      el("span", t.working, t.overdue ? "overdue" : "")];
    cells.forEach(function (c, i) {
      var td = el("td");
      td.setAttribute("data-label", HEADERS[i]);
      if (typeof c === "string") td.textContent = c; else td.appendChild(c);
      tr.appendChild(td);
    });
    if (!known[String(t.id)]) tr.classList.add("new-row");
    return tr;
  }

  function onQueue(data) {
    var body = document.getElementById("queue-body");
    var fresh = data.tickets.filter(function (t) { return !known[String(t.id)]; });
    body.replaceChildren.apply(body, data.tickets.map(queueRow));
    data.tickets.forEach(function (t) { known[String(t.id)] = true; });
    document.getElementById("queue-summary").textContent = data.summary;
    document.getElementById("queue-empty").hidden = data.count > 0;
    if (fresh.length) {
      unseen += fresh.length;
      document.title = "(" + unseen + ") " + baseTitle;
      var alert = document.getElementById("new-alert");
      alert.textContent = "新工单：" + fresh.map(function (t) { return "#" + t.id + " " + t.question; }).join("；");
      alert.hidden = false;
      beep();
    }
  }

  function fillList(id, items, render) {
    var list = document.getElementById(id);
    if (list) list.replaceChildren.apply(list, items.map(render));
  }

  function onTicket(data) {
    var facts = document.getElementById("ticket-facts");
    if (facts) {
      var nodes = [];
      data.facts.forEach(function (pair) { nodes.push(el("dt", pair[0]), el("dd", pair[1])); });
      facts.replaceChildren.apply(facts, nodes);
    }
    var routing = document.getElementById("ticket-routing");
    if (routing) routing.replaceChildren(el("strong", data.routing[0]), el("span", data.routing[1]));
    fillList("notes", data.notes, function (n) {
      var li = el("li");
      li.append(el("span", n.meta, "meta"), el("div", n.text, "pre"));
      return li;
    });
    fillList("conversation", data.messages, function (m) {
      var li = el("li", null, "conv-" + m.author);
      li.append(el("span", m.meta, "meta"), el("div", m.text, "pre"));
      return li;
    });
  }

  var toggle = document.getElementById("sound-toggle");
  if (toggle) {
    toggle.checked = window.localStorage.getItem(SOUND_KEY) === "1";
    toggle.addEventListener("change", function () {
      window.localStorage.setItem(SOUND_KEY, toggle.checked ? "1" : "0");
    });
  }
  window.addEventListener("focus", resetTitle);
  document.addEventListener("click", resetTitle);

  var url = kind === "queue" ? "/console/events?page=queue"
    : "/console/events?ticket=" + encodeURIComponent(live.getAttribute("data-ticket"));
  var source = new EventSource(url);
  source.onopen = function () { setState("实时更新中", true); };
  source.onerror = function () { setState("连接中断，正在重连…", false); };
  source.addEventListener("queue", function (e) { onQueue(JSON.parse(e.data)); });
  source.addEventListener("ticket", function (e) { onTicket(JSON.parse(e.data)); });
})();
