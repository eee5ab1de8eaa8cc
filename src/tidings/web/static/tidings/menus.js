/* The operator menus are <details name="nav-menu"> (web/_nav.html): they open and close without
   JavaScript, and the shared name keeps one open at a time.  This adds what a menu is expected
   to do besides: Escape closes the open one and puts focus back on its heading, and a click
   outside it closes it. */
(function () {
  "use strict";
  function openMenus() {
    return Array.prototype.slice.call(document.querySelectorAll(".site-nav details[open]"));
  }
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    openMenus().forEach(function (menu) {
      var inside = menu.contains(document.activeElement);
      menu.open = false;
      if (inside) { menu.querySelector("summary").focus(); }
    });
  });
  document.addEventListener("click", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.open = false; }
    });
  });
})();
