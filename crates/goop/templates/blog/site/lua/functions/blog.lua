--- The blog: visitors read published posts; the owner also sees drafts, writes and deletes
local MAX_POSTS = 500
local MAX_TITLE = 200
local MAX_BODY = 50000
local EXCERPT = 240

local posts -- the table, opened in call()

-- The template's own table (site/schemas/NAME.json) with the access it declares. A table of
-- that name made another way (by schema.sql, before the template was applied) keeps its own
-- access, which could let every visitor read or write around this function: refuse to run.
local function own_table(name, read)
    local t, err = goop.orm(name)
    local a = t and t.access
    if not a or a.read ~= read or a.insert ~= "owner" or a.update ~= "owner" or a.delete ~= "owner" then
        error("table " .. name .. " is not the one site/schemas/" .. name .. ".json declares (see goop check)"
            .. (err and ": " .. err or ""))
    end
    return t
end

local function is_owner()
    return goop.peer.id == goop.self.id
end

local function trim(value)
    return type(value) == "string" and value:match("^%s*(.-)%s*$") or ""
end

-- "Hello, World!" -> "hello-world"
local function slugify(text)
    return (text:lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", ""):sub(1, 80))
end

-- The list leaves the bodies in the table (a page of long posts would be more than the 1 MB
-- one read may return) and has SQLite cut the excerpts, by characters: a byte count would
-- split an "é" and the answer would not be text.
local LISTED = { "_id", "slug", "title", "published", "_created_at", "_updated_at" }
local EXCERPTS = "_id, substr(body, 1, " .. EXCERPT .. ") AS excerpt, length(body) > " .. EXCERPT .. " AS more"

local function list()
    local query = { order = "_created_at DESC, _id DESC", limit = 100, fields = LISTED }
    if not is_owner() then
        query.where = "published = 1"
    end
    local rows, err = posts:find(query)
    if not rows then
        error(err)
    end
    if #rows > 0 then
        local marks, ids = {}, {}
        for i, post in ipairs(rows) do
            marks[i], ids[i] = "?", post._id
        end
        local cut, e = posts:aggregate(EXCERPTS, { where = "_id IN (" .. table.concat(marks, ", ") .. ")", args = ids })
        if not cut then
            error(e)
        end
        local excerpts = {}
        for _, c in ipairs(cut) do
            excerpts[c._id] = (c.excerpt or "") .. (c.more == 1 and "…" or "")
        end
        for _, post in ipairs(rows) do
            post.excerpt = excerpts[post._id] or ""
        end
    end
    return { posts = rows, owner = is_owner() }
end

local function read(params)
    local post = posts:get_by("slug", tostring(params.slug or ""))
    if not post or (post.published ~= 1 and not is_owner()) then
        error("no such post")
    end
    return { post = post, owner = is_owner() }
end

local function save(params)
    local title, body = trim(params.title), trim(params.body)
    if title == "" or #title > MAX_TITLE then
        error("a title of 1 to " .. MAX_TITLE .. " characters, please")
    end
    if body == "" or #body > MAX_BODY then
        error("a post of 1 to " .. MAX_BODY .. " characters, please")
    end
    local slug = slugify(trim(params.slug) ~= "" and trim(params.slug) or title)
    if slug == "" then
        error("the title needs a letter or a digit")
    end
    if not posts:exists({ where = "slug = ?", args = { slug } }) and posts:count() >= MAX_POSTS then
        error("the blog is full (" .. MAX_POSTS .. " posts)")
    end
    posts:upsert("slug", { slug = slug, title = title, body = body, published = params.published == false and 0 or 1 })
    return { slug = slug }
end

local function delete(params)
    posts:delete_where({ where = "slug = ?", args = { tostring(params.slug or "") } })
    return list()
end

local dispatch = goop.route({
    list = list,
    read = read,
    save = goop.owner(save),
    delete = goop.owner(delete),
})

function call(request)
    posts = own_table("posts", "owner")
    return dispatch(request)
end
