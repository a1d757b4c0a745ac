// To-do page: every change goes through the host's data function `todo` (todo.lua), which
// decides who may do what; this page only shows what it answers.
"use strict";

const $ = (id) => document.getElementById(id);
const todo = (action, params) => Goop.data.call("todo", Object.assign({ action }, params || {}));

function say(error) {
  $("message").textContent = error ? error.message : "";
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

function render(answer) {
  const items = Array.isArray(answer.items) ? answer.items : [];
  const list = $("items");
  list.replaceChildren();
  items.forEach((item, i) => {
    const li = document.createElement("li");
    li.dataset.id = item._id;
    li.classList.toggle("done", item.done === 1);
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = item.done === 1;
    box.disabled = !answer.owner && item._owner !== Goop.self.id;
    box.addEventListener("change", () => act("toggle", { id: item._id }));
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = item.title;
    li.append(box, title);
    if (answer.owner) {
      const ids = items.map((x) => x._id);
      const move = (to) => {
        ids.splice(i, 1);
        ids.splice(to, 0, item._id);
        act("reorder", { ids });
      };
      if (i > 0) li.append(button("↑", () => move(i - 1)));
      if (i < items.length - 1) li.append(button("↓", () => move(i + 1)));
      li.append(button("Delete", () => act("delete", { id: item._id })));
    }
    list.append(li);
  });
  $("empty").hidden = items.length > 0;
  $("who").textContent = answer.owner ? "Your list: you may tick off, delete and reorder any item." :
    "Add items, and tick off the ones you added.";
}

function act(action, params) {
  return todo(action, params).then((answer) => { say(null); render(answer); }, say);
}

$("add").addEventListener("submit", (event) => {
  event.preventDefault();
  act("add", { title: $("title").value }).then(() => { $("title").value = ""; });
});
$("host-label").textContent = Goop.peer.label ? "of " + Goop.peer.label : "";
act("list");
