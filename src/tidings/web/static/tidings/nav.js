/* The navigation's menus are <details> elements and work without this.  With it: one menu open
   at a time, Escape closes it (focus back on its name), and a click elsewhere closes it. */
(function () {
  "use strict";
  var menus = Array.prototype.slice.call(document.querySelectorAll("[data-nav-group]"));
  if (!menus.length) { return; }
  menus.forEach(function (menu) {
    menu.addEventListener("toggle", function () {
      if (menu.open) {
        menus.forEach(function (other) { if (other !== menu) { other.open = false; } });
      }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    menus.forEach(function (menu) {
      if (menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  });
  document.addEventListener("click", function (event) {
    menus.forEach(function (menu) {
      if (menu.open && !menu.contains(event.target)) { menu.open = false; }
    });
  });
})();
