/* tidings cookie banner.  Embed with
     <script src="https://TIDINGS/static/analytics/banner.js" defer></script>
   It asks only about the purposes the privacy policy says need consent (from /a/banner.json),
   keeps the answer in one strictly necessary first-party cookie, posts an anonymous record of
   the answer, and gives the site's own scripts:
     window.tidings.consent.allowed("analytics")  -> true / false
     document.addEventListener("tidings:consent", function (e) { e.detail.choice ... })
     window.tidings.consent.open()                 -> shows the settings again
   Any element with a data-tidings-cookie-settings attribute opens the settings; without one the
   banner adds its own "Cookie settings" button.  Works with the keyboard and screen readers:
   a labelled region (a dialog when opened from the settings link), real buttons and checkboxes,
   focus moved in and back, Escape to close, choices announced. */
(function (d, w) {
  "use strict";
  var script = d.currentScript;
  if (!script || (w.tidings && w.tidings.consent)) return;
  var configUrl = script.getAttribute("data-config") || new URL("/a/banner.json", script.src).href;
  var cookieName = "tidings_consent";
  var config = null, choice = null, version = "", root = null, status = null, opener = null, link = null;

  /* The stored answer counts only for the banner it answered: when the policy changes what the
     banner says (a purpose that now sets cookies, say), the visitor is asked again. */
  function readCookie() {
    var m = d.cookie.match(new RegExp("(?:^|; )" + cookieName + "=([^;]*)"));
    if (!m) return;
    var parts = decodeURIComponent(m[1]).split("|"), c = {};
    version = parts[0];
    if (version != config.version.slice(0, 12)) return;
    for (var i = 1; i < parts.length; i++) {
      var kv = parts[i].split("=");
      if (kv.length == 2 && (kv[1] == "1" || kv[1] == "0")) c[kv[0]] = kv[1] == "1";
    }
    choice = c;
  }

  function writeCookie() {
    var value = config.version.slice(0, 12);
    Object.keys(choice).forEach(function (k) { value += "|" + k + "=" + (choice[k] ? 1 : 0); });
    var c = cookieName + "=" + value + "; Path=/; SameSite=Lax"; /* "|" and "=" need no escaping */
    if (config.cookie.days) c += "; Max-Age=" + config.cookie.days * 86400;
    if (location.protocol == "https:") c += "; Secure";
    d.cookie = c;
  }

  var api = {
    ready: false,
    allowed: function (purpose) {
      if (choice && choice[purpose] === true) return true;
      return !!(config && config.not_needed.indexOf(purpose) >= 0);
    },
    choice: function () { return choice ? JSON.parse(JSON.stringify(choice)) : null; },
    open: function () { open(true); }
  };
  w.tidings = w.tidings || {};
  w.tidings.consent = api;

  function announce() {
    api.ready = true;
    d.dispatchEvent(new CustomEvent("tidings:consent", { detail: { choice: api.choice() } }));
  }

  function el(tag, attrs, text) {
    var e = d.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }

  function button(act, text) {
    var b = el("button", { type: "button", "class": "tdg-button", "data-act": act }, text);
    b.addEventListener("click", function () { act == "choose" ? showChoices() : decide(act); });
    return b;
  }

  function build() {
    var t = config.texts;
    root = el("section", { "class": "tdg-banner", "aria-labelledby": "tdg-title", "aria-describedby": "tdg-body", hidden: "" });
    root.appendChild(el("h2", { id: "tdg-title", tabindex: "-1" }, t.title));
    var body = el("p", { id: "tdg-body" }, t.body + " ");
    body.appendChild(el("a", { href: config.privacy_url }, t.privacy));
    root.appendChild(body);
    var fs = el("fieldset", { "class": "tdg-choices", id: "tdg-choices", hidden: "" });
    fs.appendChild(el("legend", {}, t.choose));
    t.purposes.forEach(function (p) {
      var row = el("div", { "class": "tdg-purpose" });
      row.appendChild(el("input", { type: "checkbox", id: "tdg-p-" + p.key, name: p.key, "aria-describedby": "tdg-d-" + p.key }));
      row.appendChild(el("label", { "for": "tdg-p-" + p.key }, p.title));
      row.appendChild(el("p", { id: "tdg-d-" + p.key, "class": "tdg-detail" }, p.detail));
      fs.appendChild(row);
    });
    root.appendChild(fs);
    var buttons = el("div", { "class": "tdg-buttons" });
    buttons.appendChild(button("accept", t.accept));
    buttons.appendChild(button("reject", t.reject));
    var choose = button("choose", t.choose);
    choose.setAttribute("aria-expanded", "false");
    choose.setAttribute("aria-controls", "tdg-choices");
    buttons.appendChild(choose);
    var save = button("save", t.save);
    save.hidden = true;
    buttons.appendChild(save);
    var close = button("close", t.close);
    close.hidden = true;
    buttons.appendChild(close);
    root.appendChild(buttons);
    root.addEventListener("keydown", function (e) {
      if (e.key == "Escape" && choice) { e.preventDefault(); hide(); }
    });
    d.body.insertBefore(root, d.body.firstChild);
    status = el("p", { "class": "tdg-sr", role: "status", "aria-live": "polite" });
    d.body.appendChild(status);
  }

  function q(sel) { return root.querySelector(sel); }

  function showChoices() {
    q("#tdg-choices").hidden = false;
    q('[data-act="choose"]').setAttribute("aria-expanded", "true");
    q('[data-act="choose"]').hidden = true;
    q('[data-act="save"]').hidden = false;
    var first = q("#tdg-choices input");
    if (first) first.focus();
  }

  function open(fromLink) {
    if (!config) return;
    if (!root) build();
    config.purposes.forEach(function (k) {
      q("#tdg-p-" + k).checked = !!(choice && choice[k]); /* never pre-ticked without a choice */
    });
    root.hidden = false;
    q('[data-act="close"]').hidden = !choice;
    if (fromLink) {
      opener = d.activeElement;
      root.setAttribute("role", "dialog");
      root.removeAttribute("aria-modal");
      showChoices();
    } else {
      root.setAttribute("role", "region");
    }
    if (link) link.hidden = true;
  }

  function hide() {
    root.hidden = true;
    showLink();
    /* Back where the visitor was, else to the way back in: ours, or the site's own settings
       link (without this, answering the first banner on such a site left focus on <body>). */
    var back = opener && d.contains(opener) && opener.offsetParent !== null ? opener : link;
    if (!back) back = d.querySelector("[data-tidings-cookie-settings]:not([hidden])");
    opener = null;
    if (back && !back.hidden) back.focus();
  }

  function decide(act) {
    if (act == "close") return hide();
    var c = {};
    config.purposes.forEach(function (k) {
      c[k] = act == "accept" ? true : act == "reject" ? false : q("#tdg-p-" + k).checked;
    });
    choice = c;
    writeCookie();
    var record = JSON.stringify({ version: config.version, choice: c });
    if (!(navigator.sendBeacon && navigator.sendBeacon(config.consent_url, record))) {
      fetch(config.consent_url, { method: "POST", body: record, keepalive: true, mode: "no-cors" });
    }
    hide();
    status.textContent = "";
    setTimeout(function () { status.textContent = config.texts.saved; }, 50);
    announce();
  }

  function showLink() {
    var own = d.querySelectorAll("[data-tidings-cookie-settings]");
    if (own.length) {
      for (var i = 0; i < own.length; i++) own[i].hidden = false;
      return;
    }
    if (!link) {
      link = el("button", { type: "button", "class": "tdg-settings-link" }, config.texts.settings);
      link.addEventListener("click", function () { open(true); });
      d.body.appendChild(link);
    }
    link.hidden = false;
  }

  function start() {
    d.addEventListener("click", function (e) {
      var t = e.target.closest && e.target.closest("[data-tidings-cookie-settings]");
      if (t && config) { e.preventDefault(); open(true); }
    });
    var css = el("link", { rel: "stylesheet", href: new URL("banner.css", script.src).href });
    d.head.appendChild(css);
    fetch(configUrl, { credentials: "omit" }).then(function (r) { return r.json(); }).then(function (c) {
      config = c;
      cookieName = c.cookie.name;
      readCookie();
      var missing = c.purposes.filter(function (k) { return !choice || !(k in choice); });
      if (!c.purposes.length) { announce(); return; }
      if (missing.length) { choice = null; build(); open(false); return; }
      announce();
      showLink();
    });
  }

  if (d.readyState == "loading") d.addEventListener("DOMContentLoaded", start); else start();
})(document, window);
