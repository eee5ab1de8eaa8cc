/* The block editor, on top of a form that works without it (campaigns/blocks/editor.py).
   - "Move up", "Move down", "Remove" and "Add block" act in the page instead of submitting;
     focus stays on the button pressed (in the block's new place) and a live region says what
     happened.  Blocks can also be dragged by their handle (SortableJS).
   - Every change renumbers the fields (blocks-<n>-<field>) in page order, so the server reads
     the form exactly as it would have without JavaScript.
   - The preview follows the form: half a second after the last change, the form is posted to
     the preview address and the three frames get the new email.
   - A removed block can be put back: "Block 2 (Heading) removed. Undo" is announced with an
     "Undo" button, which takes the focus, for UNDO_SECONDS or until the next change.
   - Text fields get a small toolbar (bold, italic, link, list) and every field a menu of
     placeholders, each named for its field and block; "Link" asks for the address in a dialog.
     A picture picked from the library fills in its address. */
(function () {
  "use strict";

  var editor = document.querySelector(".block-editor");
  if (!editor) { return; }
  var form = editor.closest("form");
  var list = document.getElementById("block-list");
  var announcer = document.getElementById("block-announcer");
  var previewUrl = editor.getAttribute("data-preview-url");
  var placeholders = JSON.parse(document.getElementById("block-placeholders").textContent);
  var timer = null;
  var inflight = null;
  var dragging = false;  // a block is being dragged
  var deferred = false;  // a preview was asked for mid-drag
  var UNDO_SECONDS = 10;
  var undoBox = document.getElementById("block-undo");
  var undoMessage = document.getElementById("block-undo-message");
  var undoButton = document.getElementById("block-undo-button");
  var removed = null;  // {li, index, kind, timer}: the block the "Undo" button would put back

  function announce(text) {
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function blocks() { return Array.prototype.slice.call(list.children); }

  function label(li) { return li.querySelector(".block-title").textContent.replace(/^Block \S+: /, ""); }

  /* Names, ids, labels and button values in page order. */
  function renumber() {
    var all = blocks();
    all.forEach(function (li, index) {
      var kind = label(li);
      li.querySelectorAll("[name]").forEach(function (el) {
        el.name = el.name.replace(/^blocks-(\d+|__N__)-/, "blocks-" + index + "-");
      });
      li.querySelectorAll("[id]").forEach(function (el) {
        el.id = el.id.replace(/^block-(\d+|__N__)-/, "block-" + index + "-");
      });
      li.querySelectorAll("[for]").forEach(function (el) {
        el.htmlFor = el.htmlFor.replace(/^block-(\d+|__N__)-/, "block-" + index + "-");
      });
      li.querySelectorAll("[aria-describedby]").forEach(function (el) {
        el.setAttribute("aria-describedby",
          el.getAttribute("aria-describedby").replace(/block-(\d+|__N__)-/g, "block-" + index + "-"));
      });
      li.querySelector(".block-title").textContent = "Block " + (index + 1) + ": " + kind;
      li.querySelectorAll(".block-actions button").forEach(function (button) {
        var action = button.getAttribute("data-action");
        button.value = action + ":" + index;
        var words = { up: "Move up block %n (%k)", down: "Move down block %n (%k)", remove: "Remove block %n (%k)" };
        button.setAttribute("aria-label", words[action].replace("%n", index + 1).replace("%k", kind));
        var stuck = (action === "up" && index === 0) || (action === "down" && index === all.length - 1);
        if (stuck) { button.setAttribute("aria-disabled", "true"); } else { button.removeAttribute("aria-disabled"); }
      });
      /* The formatting tools name the field and the block they act on: "Bold" alone, the same
         in every block, left a screen-reader user guessing which text it would change. */
      var where = "block " + (index + 1) + " (" + kind + ")";
      li.querySelectorAll(".field-tools").forEach(function (bar) {
        var field = bar.getAttribute("data-field-label");
        bar.setAttribute("aria-label", "Formatting, " + field + ", " + where);
        bar.querySelectorAll("[data-tool]").forEach(function (tool) {
          var menu = tool.tagName === "SELECT";  // "Insert a placeholder into Text, block 2 (Text)"
          tool.setAttribute("aria-label", tool.getAttribute("data-tool") + (menu ? " into " : ", ") + field + ", " + where);
        });
      });
    });
    var empty = editor.querySelector(".block-empty");
    if (empty) { empty.hidden = all.length > 0; }
  }

  function move(li, offset, button) {
    var all = blocks();
    var from = all.indexOf(li);
    var to = from + offset;
    if (to < 0 || to >= all.length) {
      announce("Block " + (from + 1) + " is already " + (offset < 0 ? "first." : "last."));
      return;
    }
    if (offset < 0) { list.insertBefore(li, all[to]); } else { list.insertBefore(li, all[to].nextSibling); }
    renumber();
    button.focus();  // the same button, in the block's new place
    announce(label(li) + " moved to position " + (to + 1) + " of " + all.length + ".");
    schedule();
  }

  function remove(li) {
    forget();
    var all = blocks();
    var index = all.indexOf(li);
    var kind = label(li);
    li.remove();
    renumber();
    // Kept, fields and all, so "Undo" puts back exactly what was there.
    removed = { li: li, index: index, kind: kind,
                timer: window.setTimeout(function () { forget(); }, UNDO_SECONDS * 1000) };
    undoMessage.textContent = "Block " + (index + 1) + " (" + kind + ") removed.";
    undoButton.hidden = false;
    undoButton.focus();
    schedule();
  }

  /* The removed block is gone for good: after UNDO_SECONDS, or at the next change.  Focus on
     the vanishing "Undo" button moves to where the block was. */
  function forget() {
    if (!removed) { return; }
    window.clearTimeout(removed.timer);
    var index = removed.index;
    removed = null;
    var focused = document.activeElement === undoButton;
    undoButton.hidden = true;
    undoMessage.textContent = "";
    if (focused) {
      var rest = blocks();
      var next = rest[Math.min(index, rest.length - 1)];
      (next ? next.querySelector(".block-actions button[data-action='remove']") : document.getElementById("add-block-type")).focus();
    }
  }

  function undo() {
    if (!removed) { return; }
    var back = removed;
    window.clearTimeout(back.timer);
    removed = null;
    undoButton.hidden = true;
    undoMessage.textContent = "";
    list.insertBefore(back.li, blocks()[back.index] || null);
    renumber();
    back.li.querySelector(".block-actions button[data-action='remove']").focus();
    announce(back.kind + " put back as block " + (back.index + 1) + ".");
    schedule();
  }
  undoButton.addEventListener("click", undo);

  function add(kind) {
    var template = document.getElementById("block-template-" + kind);
    if (!template) { return; }
    var html = template.innerHTML.replace(/__NUMBER__/g, String(blocks().length + 1));
    var holder = document.createElement("ol");
    holder.innerHTML = html;
    var li = holder.firstElementChild;
    list.appendChild(li);
    enhance(li);
    renumber();
    var first = li.querySelector("input:not([type=hidden]), textarea, select");
    if (first) { first.focus(); }
    announce(label(li) + " added as block " + blocks().length + ".");
    schedule();
  }

  /* Buttons: act in the page rather than submitting. */
  form.addEventListener("click", function (event) {
    var button = event.target.closest("button[name=op]");
    if (!button || !form.contains(button)) { return; }
    var value = button.value;
    var li = button.closest(".block");
    if (/^(up|down):/.test(value) || value === "add") { forget(); }
    if (/^up:/.test(value)) { event.preventDefault(); move(li, -1, button); }
    else if (/^down:/.test(value)) { event.preventDefault(); move(li, 1, button); }
    else if (/^remove:/.test(value)) { event.preventDefault(); remove(li); }
    else if (value === "add") { event.preventDefault(); add(document.getElementById("add-block-type").value); }
    else if (value === "preview") { event.preventDefault(); refresh(); }
  });

  /* Dragging, mouse or touch (SortableJS); the buttons above are the keyboard's way. */
  if (window.Sortable) {
    window.Sortable.create(list, {
      handle: ".drag-handle",
      forceFallback: true,  // pointer events: the same behaviour with mouse, pen and touch
      // The dragged copy lives outside the form, so its fields are never posted twice.
      fallbackOnBody: true,
      animation: 150,
      ghostClass: "block-ghost",
      onStart: function () { forget(); dragging = true; },
      onEnd: function (event) {
        dragging = false;
        renumber();
        if (event.oldIndex !== event.newIndex) {
          announce(label(event.item) + " moved to position " + (event.newIndex + 1) + " of " + blocks().length + ".");
          schedule();
        } else if (deferred) {
          schedule();
        }
        deferred = false;
      }
    });
  }

  /* The preview.  Every change comes through here: the form is told, so that leaving the page
     with it unsaved asks first (tidings/unsaved.js). */
  function schedule() {
    form.dispatchEvent(new CustomEvent("tidings:edited", { bubbles: true }));
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 500);
  }

  function refresh() {
    // Mid-drag the list is in no settled order: preview once the block is dropped.
    if (dragging) { deferred = true; return; }
    renumber();
    if (inflight) { inflight.abort(); }
    inflight = new AbortController();
    var body = new FormData(form);
    body.delete("op");
    editor.classList.add("preview-busy");
    fetch(previewUrl, { method: "POST", body: body, credentials: "same-origin", signal: inflight.signal,
                        headers: { "X-Requested-With": "fetch" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (data) {
        editor.querySelectorAll(".block-preview iframe").forEach(function (frame) {
          var html = data[frame.getAttribute("data-variant")];
          if (html) { frame.srcdoc = html; }
        });
        var box = document.getElementById("preview-problems");
        box.innerHTML = "";
        if (data.problems.length) {
          var ul = document.createElement("ul");
          ul.className = "errorlist";
          data.problems.forEach(function (text) {
            var item = document.createElement("li");
            item.textContent = text;
            ul.appendChild(item);
          });
          box.appendChild(ul);
        }
        editor.classList.remove("preview-busy");
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") { return; }
        editor.classList.remove("preview-busy");
        document.getElementById("preview-problems").textContent = "The preview could not be updated; saving still works.";
      });
  }

  form.addEventListener("input", function (event) {
    if (event.target.closest(".block-editor, .field")) { forget(); schedule(); }
  });
  form.addEventListener("change", function (event) {
    if (event.target.closest(".block-editor")) { forget(); }
    var pick = event.target.closest("[data-image-pick]");
    if (pick && pick.value) {
      var src = pick.parentElement.querySelector("[data-image-src]");
      src.value = pick.value;
      /* The library's description becomes the alt text, unless one was written already:
         blocks-N-src goes with blocks-N-alt, blocks-N-left_image with blocks-N-left_alt. */
      var altName = /-src$/.test(src.name) ? src.name.replace(/-src$/, "-alt") : src.name.replace(/_image$/, "_alt");
      var alt = form.querySelector('[name="' + altName + '"]');
      var described = pick.options[pick.selectedIndex].getAttribute("data-alt");
      if (alt && !alt.value && described) { alt.value = described; }
      pick.value = "";
      announce("Picture chosen from the library.");
    }
    schedule();
  });

  /* The library's pictures, again, when this tab is back in view: the upload link opens the
     library in another tab, and a picture uploaded there belongs in these pickers (and in those
     of blocks added later) without reloading the page and losing the edits. */
  var picturesUrl = editor.getAttribute("data-pictures-url");
  function fillPicker(select, pictures) {
    while (select.options.length > 1) { select.remove(1); }
    select.options[0].textContent = pictures.length ? "—" : "— (none yet: upload one) —";
    pictures.forEach(function (picture) {
      var option = document.createElement("option");
      option.value = picture.path;
      option.textContent = picture.label;
      option.setAttribute("data-alt", picture.alt);
      select.appendChild(option);
    });
  }
  function refreshPictures() {
    if (!picturesUrl || document.visibilityState === "hidden") { return; }
    fetch(picturesUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (data) {
        document.querySelectorAll("[data-image-pick]").forEach(function (select) { fillPicker(select, data.pictures); });
        document.querySelectorAll("template[id^='block-template-']").forEach(function (template) {
          template.content.querySelectorAll("[data-image-pick]").forEach(function (select) { fillPicker(select, data.pictures); });
        });
      })
      .catch(function () { /* the pickers keep what they had */ });
  }
  document.addEventListener("visibilitychange", refreshPictures);
  window.addEventListener("focus", refreshPictures);

  /* Text helpers. */
  function insert(field, before, after, fallback) {
    var start = field.selectionStart, end = field.selectionEnd;
    var chosen = field.value.slice(start, end) || fallback || "";
    field.value = field.value.slice(0, start) + before + chosen + after + field.value.slice(end);
    field.focus();
    field.setSelectionRange(start + before.length, start + before.length + chosen.length);
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  /* "Link": the address is asked for in a dialog (a native <dialog>, modal: Escape cancels, the
     page behind is inert) rather than window.prompt, which could not say what was wrong with an
     address nor be styled or labelled.  Only the addresses a link may have are taken, checked
     here with a message at the field; the server checks every link again when the text is
     previewed or saved.  Focus goes back to the text field either way, its selection as it was
     (on "Insert link": the link's words selected). */
  var linkDialog = document.getElementById("link-dialog");
  var linkUrl = document.getElementById("link-dialog-url");
  var linkText = document.getElementById("link-dialog-text");
  var linkError = document.getElementById("link-dialog-error");
  var linkFor = null;  // {field, start, end}: where the link goes

  /* What the server takes too (check_link in blocks/schema.py): an http(s), mailto or tel
     address, which may hold placeholders ("https://example.com/?ref={{ contact.company }}"), or
     a placeholder alone that stands for a link ("{{ unsubscribe_url }}").  The menu's other
     placeholders (a name, a company) are words, never an address. */
  var PLACEHOLDER = /\{\{[\s\S]*?\}\}/g;
  var linkPlaceholders = placeholders.map(function (p) { return p.value; })
    .filter(function (value) { return /_url \}\}$/.test(value); });
  var wordPlaceholders = placeholders.map(function (p) { return p.value; })
    .filter(function (value) { return linkPlaceholders.indexOf(value) < 0; });

  // A phone number is written as people do ("tel:+44 1244 000 000"); its link has no spaces.
  function normalLink(url) {
    url = url.trim();
    return /^tel:/i.test(url) ? url.replace(/\s+/g, "") : url;
  }

  function linkProblem(url) {
    if (!url || /^(https?:\/\/|mailto:|tel:)$/i.test(url)) { return "Write the link address, for example https://example.com/page."; }
    if (/["<>]/.test(url)) { return "A link address cannot contain \" < or >."; }
    var bare = url.replace(PLACEHOLDER, "x");
    if (/^\{\{/.test(url) && !bare.replace(/x/g, "").trim()) {
      var shown = url.replace(/^\{\{-?\s*([\w.]+)\s*-?\}\}$/, "{{ $1 }}");
      return wordPlaceholders.indexOf(shown) < 0 ? ""
        : shown + " is not a link address: the placeholders that are links are " + linkPlaceholders.join(", ") + ".";
    }
    if (!/^(https?:\/\/|mailto:|tel:)/i.test(url)) {
      return "A link address must start with https://, http://, mailto: or tel:, or be a placeholder such as " +
        (linkPlaceholders[0] || "{{ view_url }}") + ", for example https://example.com/page.";
    }
    if (/\{%|\{#/.test(url)) { return "A link address can hold {{ placeholders }} but no {% tags %}."; }
    if (/\s/.test(bare)) { return "A link address cannot contain spaces."; }
    if (/[()]/.test(bare)) { return "A link address cannot contain brackets: write %28 for ( and %29 for )."; }
    if (/^https?:\/\//i.test(bare)) {
      return /^https?:\/\/[^\/?#.]+\.[^\/?#]+/i.test(bare) || /^https?:\/\/localhost\b/i.test(bare) ? ""
        : "After " + bare.match(/^https?:\/\//i)[0] + " comes the site's name, for example https://example.com/page.";
    }
    if (/^tel:/i.test(bare)) {
      return /^tel:\+?[0-9][0-9.\-]*$/i.test(bare) ? ""
        : "After tel: comes a phone number, for example tel:+441244000000.";
    }
    return /^mailto:[^@]+@[^@.]+\.[^@]+$/i.test(bare) ? ""
      : "After mailto: comes an email address, for example mailto:hello@example.com.";
  }

  function showLinkError(text) {
    linkError.textContent = text;
    if (text) { linkUrl.setAttribute("aria-invalid", "true"); } else { linkUrl.removeAttribute("aria-invalid"); }
  }

  function askLink(field) {
    if (!linkDialog || typeof linkDialog.showModal !== "function") { return; }
    var start = field.selectionStart, end = field.selectionEnd;
    linkFor = { field: field, start: start, end: end };
    var li = field.closest(".block");
    document.getElementById("link-dialog-where").textContent = "Into " + fieldLabel(field) +
      (li ? ", " + li.querySelector(".block-title").textContent.replace(/^Block (\S+): (.*)$/, "block $1 ($2)") : "") + ".";
    linkUrl.value = "https://";
    linkText.value = field.value.slice(start, end);
    showLinkError("");
    linkDialog.showModal();
    linkUrl.focus();
    linkUrl.setSelectionRange(linkUrl.value.length, linkUrl.value.length);
  }

  function closeLink(inserted) {
    var target = linkFor;
    linkFor = null;
    if (linkDialog.open) { linkDialog.close(); }  // the browser puts focus back on "Link"...
    if (!target) { return; }
    var field = target.field;
    field.focus();  // ...and it goes on to the text, where the typing was
    if (!inserted) { field.setSelectionRange(target.start, target.end); return; }
    var url = normalLink(linkUrl.value);
    var words = linkText.value.replace(/\s+/g, " ").trim() || url.replace(/^(mailto|tel):/i, "");
    words = words.replace(/([\\\[\]])/g, "\\$1");  // "[", "]" and "\" stay words, not Markdown
    field.value = field.value.slice(0, target.start) + "[" + words + "](" + url + ")" + field.value.slice(target.end);
    field.setSelectionRange(target.start + 1, target.start + 1 + words.length);
    field.dispatchEvent(new Event("input", { bubbles: true }));
    announce("Link to " + url + " inserted.");
  }

  if (linkDialog) {
    document.getElementById("link-dialog-insert").addEventListener("click", function () {
      var problem = linkProblem(normalLink(linkUrl.value));
      showLinkError(problem);
      if (problem) { linkUrl.focus(); return; }
      closeLink(true);
    });
    document.getElementById("link-dialog-cancel").addEventListener("click", function () { closeLink(false); });
    // Escape (the dialog's own "cancel"), or the dialog closed any other way.
    linkDialog.addEventListener("close", function () { if (linkFor) { closeLink(false); } });
    // Enter in a field inserts, instead of submitting the page's form behind the dialog.
    linkDialog.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target.tagName === "INPUT") {
        event.preventDefault();
        document.getElementById("link-dialog-insert").click();
      }
    });
    // Typing here is not an edit of the email (no preview, no "unsaved changes" yet).
    ["input", "change"].forEach(function (type) {
      linkDialog.addEventListener(type, function (event) { event.stopPropagation(); });
    });
    linkUrl.addEventListener("input", function () { if (linkError.textContent) { showLinkError(""); } });
  }

  /* A tool's name is completed by renumber() with its field and block ("Bold, Text, block 2
     (Text)"); data-tool holds its own part.  The button shows that same word, so its name
     starts with what is seen (WCAG 2.5.3): shown as "B", a speech user's "click B" matched
     nothing, the name being "Bold, …".  A mark before the word (the list's "•") is
     decoration, hidden from the name. */
  function toolButton(title, action, mark) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button-quiet tool tool-" + title.toLowerCase();
    if (mark) {
      var decoration = document.createElement("span");
      decoration.setAttribute("aria-hidden", "true");
      decoration.textContent = mark + " ";
      button.appendChild(decoration);
    }
    button.appendChild(document.createTextNode(title));
    button.setAttribute("data-tool", title);
    button.setAttribute("aria-label", title);
    button.addEventListener("click", action);
    return button;
  }

  function fieldLabel(field) {
    return field.labels && field.labels[0] ? field.labels[0].textContent.trim() : "this field";
  }

  function placeholderMenu(field) {
    var select = document.createElement("select");
    select.className = "placeholder-menu";
    select.setAttribute("data-tool", "Insert a placeholder");
    select.setAttribute("aria-label", "Insert a placeholder into " + fieldLabel(field));
    var first = document.createElement("option");
    first.value = "";
    first.textContent = "Insert placeholder…";
    select.appendChild(first);
    placeholders.forEach(function (p) {
      var option = document.createElement("option");
      option.value = p.value;
      option.textContent = p.value + " — " + p.label;
      select.appendChild(option);
    });
    /* Chosen with the mouse (or in the opened list): inserted at once.  Arrow keys on the
       closed menu change its value too, each press a "change": inserting then put the first
       placeholder into the text at the first press and took the focus away, so a keyboard user
       could never reach the others.  Keys choose, Enter inserts. */
    var browsing = false;
    function chosen() {
      browsing = false;
      if (select.value) { insert(field, select.value, "", ""); select.value = ""; }
    }
    select.setAttribute("aria-describedby", "placeholder-menu-help");
    select.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        if (select.value) { event.preventDefault(); chosen(); }
      } else if (!event.altKey && event.key !== " " && event.key !== "Tab") {
        browsing = true;
      }
    });
    select.addEventListener("pointerdown", function () { browsing = false; });
    // Left without Enter: nothing inserted, and the menu says so again.
    select.addEventListener("blur", function () { browsing = false; select.value = ""; });
    // Choosing is not yet an edit of the email (the text field's own input event is).
    select.addEventListener("input", function (event) { event.stopPropagation(); });
    select.addEventListener("change", function (event) {
      event.stopPropagation();
      if (!browsing) { chosen(); }
    });
    return select;
  }

  function enhance(root) {
    root.querySelectorAll("[data-placeholders]").forEach(function (field) {
      if (field.getAttribute("data-enhanced")) { return; }
      field.setAttribute("data-enhanced", "1");
      var bar = document.createElement("div");
      bar.className = "field-tools";
      bar.setAttribute("role", "toolbar");
      bar.setAttribute("aria-label", "Formatting, " + fieldLabel(field));
      bar.setAttribute("data-field-label", fieldLabel(field));
      if (field.hasAttribute("data-rich")) {
        bar.appendChild(toolButton("Bold", function () { insert(field, "**", "**", "bold text"); }));
        bar.appendChild(toolButton("Italic", function () { insert(field, "*", "*", "italic text"); }));
        bar.appendChild(toolButton("Link", function () { askLink(field); }));
        bar.appendChild(toolButton("List", function () {
          var start = field.value.lastIndexOf("\n", field.selectionStart - 1) + 1;
          field.setSelectionRange(start, start);
          insert(field, "- ", "", "");
        }, "•"));
      }
      bar.appendChild(placeholderMenu(field));
      field.parentElement.insertBefore(bar, field);
    });
  }

  enhance(editor);
  renumber();
  editor.classList.add("enhanced");
})();
