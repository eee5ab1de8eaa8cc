// Progressive enhancement for /demo/: with no timezone chosen in the address yet, show the times
// in the browser's own zone (when it is one of the page's choices).  Without JavaScript the page
// shows the company's zone and the "Show times in" list.
(function () {
  var select = document.getElementById("tz");
  if (!select || new URLSearchParams(window.location.search).has("tz")) return;
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone || zone === select.value) return;
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === zone) {
      var url = new URL(window.location.href);
      url.searchParams.set("tz", zone);
      window.location.replace(url.toString());
      return;
    }
  }
})();
