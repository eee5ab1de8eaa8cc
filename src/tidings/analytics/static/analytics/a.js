/* tidings website statistics: one request per page view, only with consent where the policy
   needs it, never with Global Privacy Control or Do Not Track on.  No cookies written, no
   storage, nothing about the device: the address and referrer of the page, nothing else.
   Kept under 2 KB by hand (tests/analytics/test_script.py measures it). */
(function (d, w, n) {
  var s = d.currentScript, u, p, sent = 0;
  if (!s || n.globalPrivacyControl || n.doNotTrack == "1" || w.doNotTrack == "1") return;
  u = s.getAttribute("data-collect") || new URL("/a/collect", s.src).href;
  p = s.getAttribute("data-consent") || "analytics"; /* "none": the policy needs no consent */
  function go() {
    var c = w.tidings && w.tidings.consent, m;
    if (sent || d.prerendering || (p != "none" && !(c && c.allowed(p)))) return;
    sent = 1;
    m = d.cookie.match(/(?:^|; )tidings_consent=([^;]*)/);
    var b = JSON.stringify({ u: location.href, r: d.referrer, c: m ? decodeURIComponent(m[1]) : "" });
    if (!(n.sendBeacon && n.sendBeacon(u, b))) {
      fetch(u, { method: "POST", body: b, keepalive: true, mode: "no-cors" });
    }
  }
  d.addEventListener("tidings:consent", go);
  /* a prerendered page is counted when it is shown, not when the browser loads it ahead */
  if (d.prerendering) d.addEventListener("prerenderingchange", go, { once: true });
  else go();
})(document, window, navigator);
