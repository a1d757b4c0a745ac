// Survey page: the questions and, for the host, the results. The host's data function
// `survey` (survey.lua) checks every answer, keeps one per visitor and keeps results private.
"use strict";

const $ = (id) => document.getElementById(id);
const survey = (action, params) => Goop.data.call("survey", Object.assign({ action }, params || {}));

function say(error) {
  $("message").textContent = error ? error.message : "";
}

function el(tag, text) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  return e;
}

function render(answer) {
  const box = $("questions");
  box.replaceChildren();
  for (const q of answer.questions || []) {
    const set = el("fieldset");
    set.dataset.question = q._id;
    set.append(el("legend", q.text));
    (q.choices || []).forEach((choice, i) => {
      const label = el("label");
      const radio = el("input");
      radio.type = "radio";
      radio.name = "q" + q._id;
      radio.value = String(i + 1);
      label.append(radio, " " + choice);
      set.append(label);
    });
    if (answer.owner) {
      const remove = el("button", "Delete question");
      remove.type = "button";
      remove.addEventListener("click", () => survey("delete_question", { id: q._id }).then(show, say));
      set.append(remove);
    }
    box.append(set);
  }
  $("survey").hidden = answer.answered;
  $("thanks").hidden = !answer.answered;
  $("owner").hidden = !answer.owner;
  if (answer.owner) showResults();
}

function showResults() {
  return survey("results").then((r) => {
    $("total").textContent = `(${r.total} ${r.total === 1 ? "answer" : "answers"})`;
    const out = $("results");
    out.replaceChildren();
    for (const q of r.questions || []) {
      const block = el("div");
      block.className = "result";
      block.append(el("strong", q.text));
      (q.choices || []).forEach((choice, i) => {
        const n = (q.counts || [])[i] || 0;
        const row = el("div", `${choice}: ${n}`);
        const bar = el("div");
        bar.className = "bar";
        bar.style.width = r.total ? `${(100 * n) / r.total}%` : "0";
        block.append(row, bar);
      });
      out.append(block);
    }
  }, say);
}

function show(answer) {
  say(null);
  render(answer);
}

$("survey").addEventListener("submit", (event) => {
  event.preventDefault();
  const answers = {};
  for (const set of document.querySelectorAll("#questions fieldset")) {
    const picked = set.querySelector("input:checked");
    if (picked) answers[set.dataset.question] = Number(picked.value);
  }
  survey("answer", { answers }).then(show, say);
});
$("add").addEventListener("submit", (event) => {
  event.preventDefault();
  const choices = $("new-choices").value.split("|");
  survey("add_question", { text: $("new-text").value, choices }).then((answer) => {
    $("add").reset();
    show(answer);
  }, say);
});
$("host-label").textContent = Goop.peer.label ? "by " + Goop.peer.label : "";
survey("show").then(show, say);
