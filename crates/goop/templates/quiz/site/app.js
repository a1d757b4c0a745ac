// Quiz page: questions come from the `questions` table, scoring from the host's score-quiz
// function. The answer key stays in a table visitors cannot read.
"use strict";

const $ = (id) => document.getElementById(id);
const isHost = Goop.self.id === Goop.peer.id;

function short(id) {
  return id ? id.slice(0, 6) + "…" + id.slice(-4) : "";
}

function parseChoices(text) {
  try {
    const list = JSON.parse(text);
    return Array.isArray(list) ? list : [];
  } catch (e) {
    return [];
  }
}

async function loadQuestions() {
  const rows = await Goop.data.query("questions", { order: "_id" });
  $("questions").replaceChildren(...rows.map((q) => {
    const box = document.createElement("div");
    box.className = "question";
    box.dataset.questionId = q._id;
    const text = box.appendChild(document.createElement("p"));
    text.textContent = q.question;
    parseChoices(q.choices).forEach((choice, i) => {
      const label = box.appendChild(document.createElement("label"));
      const input = label.appendChild(document.createElement("input"));
      input.type = "radio";
      input.name = "q" + q._id;
      input.value = String(i);
      label.appendChild(document.createTextNode(" " + choice));
    });
    return box;
  }));
}

async function loadLeaderboard() {
  const board = await Goop.data.call("leaderboard", {});
  const entries = Array.isArray(board.entries) ? board.entries : [];
  $("leaderboard").replaceChildren(...entries.map((e) => {
    const li = document.createElement("li");
    li.dataset.player = e.player;
    li.textContent = (e.label || short(e.player)) + ": " + e.score + " / " + e.total;
    return li;
  }));
}

$("quiz").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("message").textContent = "";
  const answers = {};
  document.querySelectorAll(".question").forEach((q) => {
    const picked = q.querySelector("input:checked");
    if (picked) answers[q.dataset.questionId] = Number(picked.value);
  });
  try {
    const result = await Goop.data.call("score-quiz", { answers });
    $("score").textContent = result.score + " / " + result.total;
    const right = new Set((Array.isArray(result.correct) ? result.correct : []).map(String));
    document.querySelectorAll(".question").forEach((q) => q.classList.toggle("right", right.has(q.dataset.questionId)));
    await loadLeaderboard();
  } catch (e) {
    $("message").textContent = e.message;
  }
});

// The host adds questions straight into its tables (the owner is never restricted).
$("add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const choices = $("new-choices").value.split("|").map((c) => c.trim()).filter(Boolean);
  const answer = Number($("new-answer").value) - 1;
  if (choices.length < 2 || !(answer >= 0 && answer < choices.length)) {
    $("message").textContent = "Give at least two choices and the number of the right one.";
    return;
  }
  try {
    const id = await Goop.data.insert("questions", { question: $("new-question").value, choices: JSON.stringify(choices) });
    await Goop.data.insert("answer_key", { question_id: id, answer });
    $("add").reset();
    await loadQuestions();
  } catch (e) {
    $("message").textContent = e.message;
  }
});

$("host-label").textContent = Goop.peer.label ? "at " + Goop.peer.label : "";
$("owner").hidden = !isHost;
loadQuestions().catch((e) => { $("message").textContent = e.message; });
loadLeaderboard().catch((e) => { $("message").textContent = e.message; });
