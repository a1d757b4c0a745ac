// Blog page: the list of posts, one post (#slug in the address), and for the owner an editor.
// The host's data function `blog` (blog.lua) decides what each visitor may read or write.
"use strict";

const $ = (id) => document.getElementById(id);
const blog = (action, params) => Goop.data.call("blog", Object.assign({ action }, params || {}));
const isOwner = Goop.self.id === Goop.peer.id;

function say(error) {
  $("message").textContent = error ? error.message : "";
}

function when(post) {
  return post._created_at ? post._created_at.slice(0, 10) : "";
}

function showList() {
  return blog("list").then((answer) => {
    const main = $("list");
    main.replaceChildren();
    for (const post of answer.posts || []) {
      const card = document.createElement("div");
      card.className = "card";
      const h = document.createElement("h2");
      const a = document.createElement("a");
      a.href = "#" + encodeURIComponent(post.slug);
      a.textContent = post.title;
      h.append(a);
      if (post.published !== 1) {
        const draft = document.createElement("span");
        draft.className = "draft";
        draft.textContent = "draft";
        h.append(draft);
      }
      const meta = document.createElement("p");
      meta.className = "note";
      meta.textContent = when(post);
      const excerpt = document.createElement("p");
      excerpt.textContent = post.excerpt;
      card.append(h, meta, excerpt);
      main.append(card);
    }
    if (!main.children.length) main.textContent = "No posts yet.";
    main.hidden = false;
    $("post").hidden = true;
    $("editor").hidden = !isOwner;
    say(null);
  }, say);
}

function showPost(slug) {
  return blog("read", { slug }).then((answer) => {
    const post = answer.post;
    $("post-title").textContent = post.title;
    $("post-meta").textContent = when(post) + (post.published === 1 ? "" : " · draft");
    $("post-body").textContent = post.body;
    $("list").hidden = true;
    $("post").hidden = false;
    $("edit").hidden = $("delete").hidden = !isOwner;
    $("editor").hidden = true;
    $("edit").onclick = () => {
      $("title").value = post.title;
      $("slug").value = post.slug;
      $("body").value = post.body;
      $("published").checked = post.published === 1;
      $("editor").hidden = false;
    };
    $("delete").onclick = () => blog("delete", { slug: post.slug }).then(() => { location.hash = ""; }, say);
    say(null);
  }, say);
}

function route() {
  const slug = decodeURIComponent(location.hash.slice(1));
  return slug ? showPost(slug) : showList();
}

$("write").addEventListener("submit", (event) => {
  event.preventDefault();
  blog("save", {
    title: $("title").value,
    slug: $("slug").value,
    body: $("body").value,
    published: $("published").checked,
  }).then((answer) => {
    $("write").reset();
    if (location.hash === "#" + answer.slug) route();
    else location.hash = answer.slug;
  }, say);
});
window.addEventListener("hashchange", route);
$("host-label").textContent = Goop.peer.label ? "by " + Goop.peer.label : "";
route();
