--- The survey: visitors answer once; the owner writes the questions and alone sees the results
local MAX_QUESTIONS = 50
local MAX_CHOICES = 10
local MAX_TEXT = 300
local MAX_RESPONSES = 10000
local PAGE = 1000 -- the most rows one read gives a script

local SAMPLE = {
    { text = "How did you find this site?", choices = { "A friend told me", "A link elsewhere", "By chance" } },
    { text = "Would you come back?", choices = { "Yes", "Maybe", "No" } },
}

local questions, responses -- the tables, opened in call()

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

-- The sample questions, once: a survey works the moment it is installed.
local function seed()
    if goop.kv.get("seeded") then
        return
    end
    local rows = {}
    for i, q in ipairs(SAMPLE) do
        rows[i] = { text = q.text, choices = goop.json.encode(q.choices), position = i }
    end
    questions:seed(rows)
    goop.kv.set("seeded", true)
end

local function all_questions()
    local rows = questions:find({ order = "position ASC, _id ASC", limit = MAX_QUESTIONS })
    for _, q in ipairs(rows) do
        q.choices = goop.json.decode(q.choices) or {}
    end
    return rows
end

local function answered()
    return responses:exists({ where = "_owner = ?", args = { goop.peer.id } })
end

local function show()
    return { questions = all_questions(), answered = answered(), owner = is_owner() }
end

local function answer(params)
    local given = type(params.answers) == "table" and params.answers or {}
    local kept = {}
    for _, q in ipairs(all_questions()) do
        local choice = tonumber(given[tostring(q._id)])
        if not choice or choice ~= math.floor(choice) or choice < 1 or choice > #q.choices then
            error("please answer every question")
        end
        kept[tostring(q._id)] = choice
    end
    if answered() then
        error("you have already answered")
    end
    if responses:count() >= MAX_RESPONSES then
        error("the survey is closed: it has " .. MAX_RESPONSES .. " answers")
    end
    local id, err = responses:insert({ answers = goop.json.encode(kept) })
    if not id then
        error(err)
    end
    -- Two answers sent at once both pass the check above: the first one stays.
    local first = responses:find_one({ where = "_owner = ?", args = { goop.peer.id }, order = "_id ASC" })
    if first and first._id ~= id then
        responses:delete(id)
        error("you have already answered")
    end
    return show()
end

local function results()
    local list = all_questions()
    local counts = {}
    for _, q in ipairs(list) do
        local tally = {}
        for i = 1, #q.choices do
            tally[i] = 0
        end
        counts[tostring(q._id)] = tally
    end
    -- Page by page: a read gives at most 1000 rows, and a survey holds up to 10000 answers.
    local total = 0
    repeat
        local rows, err = responses:find({ fields = { "answers" }, order = "_id", limit = PAGE, offset = total })
        if not rows then
            error(err)
        end
        for _, row in ipairs(rows) do
            for qid, choice in pairs(goop.json.decode(row.answers) or {}) do
                local tally = counts[qid]
                if tally and tally[choice] then
                    tally[choice] += 1
                end
            end
        end
        total += #rows
    until #rows < PAGE
    for _, q in ipairs(list) do
        q.counts = counts[tostring(q._id)]
    end
    return { questions = list, total = total }
end

local function add_question(params)
    local text = trim(params.text)
    if text == "" or #text > MAX_TEXT then
        error("a question of 1 to " .. MAX_TEXT .. " characters, please")
    end
    local choices = {}
    for _, c in ipairs(type(params.choices) == "table" and params.choices or {}) do
        c = trim(c)
        if c ~= "" then
            if #c > MAX_TEXT then
                error("choices of at most " .. MAX_TEXT .. " characters, please")
            end
            table.insert(choices, c)
        end
    end
    if #choices < 2 or #choices > MAX_CHOICES then
        error("2 to " .. MAX_CHOICES .. " choices, please")
    end
    if questions:count() >= MAX_QUESTIONS then
        error("the survey has " .. MAX_QUESTIONS .. " questions already")
    end
    local last = questions:aggregate("MAX(position) AS top")[1]
    questions:insert({ text = text, choices = goop.json.encode(choices), position = (last and last.top or 0) + 1 })
    return show()
end

local function delete_question(params)
    questions:delete(tonumber(params.id) or -1)
    return show()
end

local dispatch = goop.route({
    show = show,
    answer = answer,
    results = goop.owner(results),
    add_question = goop.owner(add_question),
    delete_question = goop.owner(delete_question),
})

function call(request)
    questions, responses = own_table("questions", "open"), own_table("responses", "owner")
    seed()
    return dispatch(request)
end
