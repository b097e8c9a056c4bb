/* policybot web chat: the resident's page and the embeddable widget.
 * Every piece of text from the server is inserted with textContent, never parsed as HTML; http(s)
 * addresses in it become links (made with createElement, rel="noopener"), any other scheme stays text. */
(function () {
  "use strict";

  var TOKEN_KEY = "policybot.visitor";
  var TOKEN_RE = /^[A-Za-z0-9_-]{16,128}$/;
  var KIND_NAMES = { faq: "常见问题", guide: "办事指南", policy: "政策解读", clause: "政策条款" };
  var EXAMPLES = ["商务局的电话是多少？", "开干洗店要去商务局备案吗？", "申请政府信息公开多久能答复？"];

  var body = document.body;
  var pollMs = Math.max(1, Number(body.dataset.pollSeconds) || 3) * 1000;
  var maxChars = Number(body.dataset.maxChars) || 2000;
  var token = loadToken();
  var lastId = 0;
  var known = false;
  var syncing = null;
  var pollTimer = null;

  var log = document.getElementById("log");
  var form = document.getElementById("ask-form");
  var input = document.getElementById("question");
  var sendButton = document.getElementById("send");
  var formError = document.getElementById("form-error");
  var offline = document.getElementById("offline");

  function randomToken() {
    var bytes = new Uint8Array(24);
    window.crypto.getRandomValues(bytes);
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return window.btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function loadToken() {
    try {
      var saved = window.localStorage.getItem(TOKEN_KEY);
      if (saved && TOKEN_RE.test(saved)) return saved;
      var fresh = randomToken();
      window.localStorage.setItem(TOKEN_KEY, fresh);
      return fresh;
    } catch (e) {
      return randomToken(); // storage blocked: the conversation lasts as long as the page
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /* Text with its http(s) addresses as links; everything else (javascript:, data:, ...) stays text.
   * An address ends at white space, a quote, an angle bracket or Chinese punctuation. */
  var URL_RE = /https?:\/\/[^\s<>"'\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]+/g;
  function linked(tag, className, text) {
    var node = el(tag, className);
    var s = String(text === undefined || text === null ? "" : text);
    var at = 0;
    s.replace(URL_RE, function (url, index) {
      var trimmed = url.replace(/[.,;:!?)\]]+$/, "");
      if (index > at) node.appendChild(document.createTextNode(s.slice(at, index)));
      var a = el("a", "msg-link", trimmed);
      a.href = trimmed;
      a.target = "_blank";
      a.rel = "noopener";
      node.appendChild(a);
      at = index + trimmed.length;
      return url;
    });
    if (at < s.length) node.appendChild(document.createTextNode(s.slice(at)));
    return node;
  }

  function api(method, path, data) {
    var options = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (data) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(data);
    }
    return fetch(path, options).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (json) {
        if (!res.ok) {
          var err = new Error((json && json.message) || "服务暂时不可用（HTTP " + res.status + "）");
          err.status = res.status;
          throw err;
        }
        return json;
      });
    });
  }

  function showError(text) {
    formError.textContent = text || "";
    formError.hidden = !text;
  }

  function timeText(iso) {
    var d = iso ? new Date(iso) : new Date();
    if (isNaN(d.getTime())) return "";
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  /* After an answer: when the question and its answer do not fit, show the question at the top (the
   * visitor reads the answer from its start) instead of the answer's end. The log scrolls inside the
   * page on a large screen, the page itself on a phone: scrollIntoView moves whichever does. */
  function keepQuestionInView() {
    var asked = log.querySelectorAll(".msg-user");
    if (!asked.length) return;
    var question = asked[asked.length - 1];
    var top = question.getBoundingClientRect().top;
    var visibleTop = Math.max(0, log.getBoundingClientRect().top);
    var last = log.lastElementChild;
    var bottom = last ? last.getBoundingClientRect().bottom : top;
    var visibleBottom = Math.min(window.innerHeight, log.getBoundingClientRect().bottom);
    if (top < visibleTop || bottom > visibleBottom) question.scrollIntoView({ block: "start" });
  }

  /* One bubble: a stored message (from the conversation) or a reply shown only now. */
  function bubble(item, stored) {
    var author = item.author || "bot";
    var kind = item.kind || "info";
    var wrap = el("div", "msg msg-" + author + " kind-" + kind);
    if (stored) wrap.dataset.id = String(item.id);
    var who = author === "user" ? "我" : author === "staff" ? "工作人员" : "咨询助手";
    var meta = el("p", "msg-meta");
    meta.appendChild(el("span", "msg-who", who));
    if (author === "staff") meta.appendChild(el("span", "badge badge-staff", "人工答复"));
    if (item.ticket_id && (kind === "escalated" || author === "staff")) {
      meta.appendChild(el("span", "badge", "工单 #" + item.ticket_id));
    }
    meta.appendChild(el("time", "msg-time", timeText(item.created_at)));
    wrap.appendChild(meta);
    wrap.appendChild(linked("p", "msg-text", item.text));
    if (item.source_line) wrap.appendChild(linked("p", "msg-source", item.source_line));
    var page = /(https?:\/\/[^\s（）]+\/t\/[0-9]+-[a-z0-9]+)/.exec(item.text || "");
    if (page) {  // a ticket's reply page (shown once): a link to open or bookmark
      var open = el("a", "btn btn-secondary ticket-page-link", "打开工单答复页");
      open.href = page[1];
      open.target = "_blank";
      open.rel = "noopener";
      wrap.appendChild(open);
    }
    var rows = item.buttons || [];
    // 相关问题 (rel:) and the staff reply's rating (rate:) are groups of their own, after the others.
    var related = rows.filter(function (row) { return row.length && /^rel:/.test(row[0].action); });
    var rating = rows.filter(function (row) { return row.length && /^rate:/.test(row[0].action); });
    rows = rows.filter(function (row) { return related.indexOf(row) < 0 && rating.indexOf(row) < 0; });
    if (rows.length) {
      var group = el("div", kind === "answer" ? "choices choices-feedback" : "choices");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", kind === "answer" ? "这个回答有帮助吗" : "请选择");
      if (kind === "suggestions") group.appendChild(el("p", "choices-hint", "请选择最接近的问题："));
      rows.forEach(function (row) {
        row.forEach(function (b) {
          var btn = el("button", "choice", b.label);
          btn.type = "button";
          btn.dataset.action = b.action;
          if (/^feedback:/.test(b.action)) btn.className = "choice choice-feedback";
          if (/^escalate:/.test(b.action)) btn.className = "choice choice-human";
          group.appendChild(btn);
          if (/^(escalate|human)(:|$)/.test(b.action)) {
            // On the web the way on beside 转人工 is 留言 (a message with a phone number or e-mail).
            var note = el("button", "choice choice-message", "留言");
            note.type = "button";
            note.dataset.message = "1";
            group.appendChild(note);
          }
        });
      });
      wrap.appendChild(group);
    }
    if (related.length) wrap.appendChild(relatedGroup(related));
    if (rating.length) wrap.appendChild(ratingGroup(rating[0], item.rating || null));
    log.appendChild(wrap);
    scrollToEnd();
    return wrap;
  }

  /* 相关问题 under an answer: each button shows another answer (not used up by pressing another). */
  function relatedGroup(rows) {
    var group = el("div", "choices choices-related");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "相关问题");
    group.appendChild(el("p", "choices-hint", "相关问题："));
    rows.forEach(function (row) {
      var btn = el("button", "choice choice-related", row[0].label);
      btn.type = "button";
      btn.dataset.action = row[0].action;
      group.appendChild(btn);
    });
    return group;
  }

  /* 满意 / 一般 / 不满意 under a staff reply, then an optional comment; rating again replaces it. */
  function ratingGroup(row, current) {
    var box = el("div", "rating");
    var group = el("div", "choices choices-rating");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "您对这次答复满意吗");
    group.appendChild(el("p", "choices-hint", "您对这次答复满意吗？"));
    var status = el("p", "rating-status");
    status.setAttribute("role", "status");
    var form = el("form", "rating-comment");
    form.hidden = true;
    var comment = el("textarea");
    comment.maxLength = 500;
    comment.rows = 2;
    comment.placeholder = "补充意见（可选，500 字以内）";
    comment.setAttribute("aria-label", "补充意见");
    var send = el("button", "btn btn-secondary", "提交意见");
    send.type = "submit";
    form.appendChild(comment);
    form.appendChild(send);
    var chosen = current ? current.rating : "";
    function mark(score) {
      Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) {
        var on = b.dataset.score === score;
        b.classList.toggle("choice-chosen", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
    }
    function rate(score, text) {
      var messageId = Number(row[0].action.split(":")[2]);
      var data = { token: token, message_id: messageId, rating: score };
      if (text) data.comment = text;
      return api("POST", "/api/rating", data).then(function (res) {
        chosen = score;
        mark(score);
        status.textContent = res.reply.text;
        form.hidden = false;
      }).catch(function (err) { status.textContent = err.message; });
    }
    row.forEach(function (b) {
      var btn = el("button", "choice choice-rate", b.label);
      btn.type = "button";
      btn.dataset.score = b.action.split(":")[1];
      btn.addEventListener("click", function (ev) { ev.stopPropagation(); rate(btn.dataset.score, ""); });
      group.appendChild(btn);
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!chosen || !comment.value.trim()) return;
      rate(chosen, comment.value.trim()).then(function () { comment.value = ""; });
    });
    if (chosen) {
      mark(chosen);
      status.textContent = "您的评价：" + ({ good: "满意", fair: "一般", bad: "不满意" }[chosen] || chosen) +
        (current.comment ? "（意见：" + current.comment + "）" : "");
    }
    box.appendChild(group);
    box.appendChild(status);
    box.appendChild(form);
    return box;
  }

  function welcome() {
    if (log.querySelector(".msg-welcome")) return;
    var wrap = el("div", "msg msg-bot msg-welcome");
    var meta = el("p", "msg-meta");
    meta.appendChild(el("span", "msg-who", "咨询助手"));
    wrap.appendChild(meta);
    wrap.appendChild(el("p", "msg-text",
      "您好！我是鼓楼区商务局的政策咨询助手，可以解答商务政策、办事指南和政府信息公开等问题。请直接输入您的问题，也可以点下面大家常问的问题："));
    var group = el("div", "choices choices-hot");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "热点问题");
    group.appendChild(el("p", "choices-hint", "热点问题："));
    wrap.appendChild(group);
    log.appendChild(wrap);
    // The hot questions (pinned, most asked, defaults) come from the server; the examples if it fails.
    api("GET", "/api/hot").then(function (data) {
      if (!data.questions.length) throw new Error("none");
      data.questions.forEach(function (q) {
        var btn = el("button", "choice choice-hot", q.label);
        btn.type = "button";
        btn.dataset.action = q.action;
        group.appendChild(btn);
      });
    }).catch(function () {
      EXAMPLES.forEach(function (q) {
        var btn = el("button", "choice choice-example", q);
        btn.type = "button";
        btn.dataset.example = q;
        group.appendChild(btn);
      });
    });
  }

  /* Fetch the messages after lastId. A sync asked for while one is running runs after it, so that
   * what the caller just changed is always fetched. */
  function sync() {
    if (syncing) return syncing.then(sync);
    var url = "/api/conversations/" + encodeURIComponent(token) + "?after=" + lastId;
    syncing = api("GET", url).then(function (data) {
      offline.hidden = true;
      known = true;
      data.messages.forEach(function (m) {
        if (m.id > lastId) {
          var node = bubble(m, true);
          if (m.author === "staff" && lastId > 0) node.classList.add("msg-new");
          lastId = m.id;
        }
      });
    }).catch(function (err) {
      if (err.status === 404) { offline.hidden = true; welcome(); return; }
      offline.hidden = false;
    }).then(function () { syncing = null; });
    return syncing;
  }

  function schedulePoll() {
    window.clearTimeout(pollTimer);
    var wait = document.hidden ? pollMs * 5 : pollMs;
    pollTimer = window.setTimeout(function () {
      sync().then(schedulePoll);
    }, wait);
  }

  /* Replies that are not stored in the conversation (thanks, status...) are shown once, after it. */
  function showReplies(replies) {
    replies.forEach(function (r) {
      if (r && r.message_id === null) bubble(r, false);
    });
  }

  function setBusy(busy) {
    sendButton.disabled = busy;
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function ask(question) {
    showError("");
    question = question.trim();
    if (!question) { showError("请输入您的问题。"); input.focus(); return; }
    if (question.length > maxChars) { showError("问题太长了（超过 " + maxChars + " 字），请精简后再问。"); return; }
    setBusy(true);
    var requestId = randomToken().slice(0, 16);
    api("POST", "/api/ask", { token: token, question: question, request_id: requestId })
      .then(function (data) {
        input.value = "";
        var welcomeNode = log.querySelector(".msg-welcome");
        if (welcomeNode && !known) welcomeNode.remove();
        return sync().then(function () { showReplies(data.replies.concat(data.notices || [])); keepQuestionInView(); });
      })
      .catch(function (err) { showError(err.message); })
      .then(function () { setBusy(false); input.focus({ preventScroll: true }); });
  }

  function runAction(button) {
    var action = button.dataset.action;
    var group = button.parentNode;
    // A push's 阅读全文 and 退订, or a list of categories, are separate choices: only the pressed one is used up.
    var separate = /^(read|unsub|subscribe|unsubscribe|follow|unfollow|digest|subscriptions|rel|entry)(:|$)/.test(action);
    var buttons = separate ? [button] : group.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    button.classList.add("choice-chosen");
    button.setAttribute("aria-pressed", "true");
    showError("");
    var parts = action.split(":");
    var call = parts[0] === "feedback"
      ? api("POST", "/api/feedback", { token: token, message_id: Number(parts[2]), helpful: parts[1] === "up" })
      : api("POST", "/api/action", { token: token, action: action });
    call.then(function (data) {
      return sync().then(function () { showReplies([data.reply].concat(data.notices || [])); });
    }).catch(function (err) {
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      button.classList.remove("choice-chosen");
      showError(err.message);
    });
  }

  function simpleAction(action) {
    showError("");
    api("POST", "/api/action", { token: token, action: action })
      .then(function (data) {
        return sync().then(function () { showReplies([data.reply].concat(data.notices || [])); });
      })
      .catch(function (err) { showError(err.message); });
  }

  /* ---- 留言: a message for staff with an optional phone number or e-mail ---- */
  var messageForm = document.getElementById("message-form");
  var messageText = document.getElementById("message-text");
  var messageContact = document.getElementById("message-contact");
  var messageError = document.getElementById("message-error");

  function openMessageForm() {
    if (!messageText.value) {
      var mine = log.querySelectorAll(".msg-user .msg-text");
      if (mine.length) messageText.value = mine[mine.length - 1].textContent;
    }
    messageError.hidden = true;
    messageForm.hidden = false;
    messageText.focus();
  }

  messageForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = messageText.value.trim();
    if (!text) { messageError.textContent = "请填写留言内容。"; messageError.hidden = false; return; }
    var data = { token: token, message: text };
    if (messageContact.value.trim()) data.contact = messageContact.value.trim();
    document.getElementById("message-send").disabled = true;
    api("POST", "/api/message", data).then(function (res) {
      messageForm.hidden = true;
      messageText.value = "";
      messageContact.value = "";
      var welcomeNode = log.querySelector(".msg-welcome");
      if (welcomeNode) welcomeNode.remove();
      return sync().then(function () { showReplies(res.notices || []); });
    }).catch(function (err) {
      messageError.textContent = err.message;
      messageError.hidden = false;
    }).then(function () { document.getElementById("message-send").disabled = false; });
  });
  document.getElementById("message-cancel").addEventListener("click", function () { messageForm.hidden = true; });
  document.getElementById("leave-message").addEventListener("click", openMessageForm);

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    ask(input.value);
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      ask(input.value);
    }
  });
  log.addEventListener("click", function (ev) {
    var target = ev.target.closest("button");
    if (!target) return;
    if (target.dataset.example) { ask(target.dataset.example); return; }
    if (target.dataset.message) { openMessageForm(); return; }
    if (target.dataset.action) runAction(target);
  });
  document.getElementById("human").addEventListener("click", function () { simpleAction("human"); });
  document.getElementById("my-tickets").addEventListener("click", function () { simpleAction("status"); });
  document.getElementById("my-subscriptions").addEventListener("click", function () { simpleAction("subscriptions"); });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) sync().then(schedulePoll);
  });

  /* ---- the knowledge browser ---- */
  var tabs = [document.getElementById("tab-chat"), document.getElementById("tab-browse")];
  var categoriesLoaded = false;
  var categoryList = document.getElementById("categories");
  var entriesBox = document.getElementById("entries");
  var entryList = document.getElementById("entry-list");
  var entryView = document.getElementById("entry");
  var browseStatus = document.getElementById("browse-status");
  var currentCategory = "";

  /* 订阅此类政策更新 / 关注此条 in the browser: the confirmation (or refusal) is shown in place. */
  function browseAction(action, statusBox) {
    statusBox.hidden = true;
    api("POST", "/api/action", { token: token, action: action }).then(function (data) {
      statusBox.textContent = data.reply.text;
      statusBox.hidden = false;
    }).catch(function (err) {
      statusBox.textContent = err.message;
      statusBox.hidden = false;
    });
  }

  document.getElementById("subscribe-category").addEventListener("click", function () {
    browseAction("subscribe:" + currentCategory, browseStatus);
  });

  function selectTab(tab) {
    tabs.forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    });
    if (tab.id === "tab-browse" && !categoriesLoaded) loadCategories();
  }

  tabs.forEach(function (tab, i) {
    tab.addEventListener("click", function () { selectTab(tab); });
    tab.addEventListener("keydown", function (ev) {
      if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
      var next = tabs[(i + (ev.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      next.focus();
      selectTab(next);
    });
  });

  function loadCategories() {
    api("GET", "/api/categories").then(function (data) {
      categoriesLoaded = true;
      categoryList.textContent = "";
      data.categories.forEach(function (c) {
        var li = el("li");
        var btn = el("button", "category");
        btn.type = "button";
        btn.appendChild(el("span", "category-name", c.name));
        btn.appendChild(el("span", "category-count", c.count + " 条"));
        btn.addEventListener("click", function () { loadEntries(c.name, btn); });
        li.appendChild(btn);
        categoryList.appendChild(li);
      });
    }).catch(function (err) { browseError(err.message); });
  }

  function loadEntries(category, button) {
    Array.prototype.forEach.call(categoryList.querySelectorAll("button"), function (b) {
      b.setAttribute("aria-current", b === button ? "true" : "false");
    });
    api("GET", "/api/entries?category=" + encodeURIComponent(category)).then(function (data) {
      document.getElementById("entries-title").textContent = category;
      currentCategory = category;
      browseStatus.hidden = true;
      entryList.textContent = "";
      data.entries.forEach(function (e) {
        var li = el("li");
        var btn = el("button", "entry-link");
        btn.type = "button";
        btn.appendChild(el("span", "badge badge-" + e.kind, KIND_NAMES[e.kind] || e.kind));
        btn.appendChild(el("span", "entry-link-title", e.title));
        btn.addEventListener("click", function () { loadEntry(e.id); });
        li.appendChild(btn);
        entryList.appendChild(li);
      });
      entryView.hidden = true;
      entriesBox.hidden = false;
    }).catch(function (err) { browseError(err.message); });
  }

  function browseError(text) {
    var box = document.getElementById("browse-error");
    box.textContent = text;
    box.hidden = !text;
  }

  function loadEntry(id) {
    api("GET", "/api/entries/" + encodeURIComponent(id)).then(function (e) {
      entryView.textContent = "";
      var back = el("button", "btn btn-link", "← 返回列表");
      back.type = "button";
      back.addEventListener("click", function () { entryView.hidden = true; entriesBox.hidden = false; });
      entryView.appendChild(back);
      entryView.appendChild(el("p", "badge badge-" + e.kind, KIND_NAMES[e.kind] || e.kind));
      entryView.appendChild(el("h3", "entry-title", e.title));
      if (e.expired) {
        entryView.appendChild(el("p", "notice notice-warn", "该政策有效期至 " + e.valid_until + "，已过期，仅供参考。"));
      }
      if (e.kind === "faq" || (e.answer && !e.sections.length)) {
        entryView.appendChild(el("p", "entry-text", e.answer));
      }
      e.sections.forEach(function (s) {
        var section = el("section", "entry-section");
        section.appendChild(el("h4", null, s.name));
        section.appendChild(el("p", "entry-text", s.text));
        entryView.appendChild(section);
      });
      entryView.appendChild(linked("p", "msg-source", e.source_line));
      var askBtn = el("button", "btn btn-secondary", "就此提问");
      askBtn.type = "button";
      askBtn.addEventListener("click", function () {
        selectTab(tabs[0]);
        input.value = e.title;
        input.focus();
      });
      entryView.appendChild(askBtn);
      var followStatus = el("p", "notice");
      followStatus.setAttribute("role", "status");
      followStatus.hidden = true;
      var followBtn = el("button", "btn btn-secondary", "关注此条（修订、失效时通知我）");
      followBtn.type = "button";
      followBtn.addEventListener("click", function () { browseAction("follow:" + e.id, followStatus); });
      entryView.appendChild(followBtn);
      entryView.appendChild(followStatus);
      entriesBox.hidden = true;
      entryView.hidden = false;
      entryView.focus();
    }).catch(function (err) { browseError(err.message); });
  }

  sync().then(schedulePoll);
})();
