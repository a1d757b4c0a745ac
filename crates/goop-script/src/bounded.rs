//! Library functions whose C loops never look at the deadline, replaced by ones that keep it.
//!
//! Luau checks the deadline between Lua instructions, not inside a C function. Three library
//! functions can spend far longer than a call's timeout in one C loop on a few MB of input:
//! `string.find` with a plain needle and `string.split` compare the needle at every position
//! (O(n·m)), and `table.sort` compares long strings with a shared prefix O(n log n) times. Here
//! the first two search with `memchr::memmem` (linear) and `table.sort` always compares through a
//! Lua function (a C comparator such as `table.find` would run unchecked too), so the deadline is
//! checked at every comparison.

use memchr::memmem;
use mlua::{Function, Lua, LuaString, MultiValue, Table, Value};

use crate::budget::Budget;

/// Characters that make a `string.find` pattern more than a plain needle (as Luau decides).
const SPECIALS: &[u8] = b"^$*+?.([%-";

/// Replaces `string.find`, `string.split` and `table.sort` in `globals`, before they are frozen.
pub fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let string: Table = globals.raw_get("string")?;
    let find: Function = string.raw_get("find")?;
    string.raw_set("find", lua.create_function(move |_, args: MultiValue| plain_find(&find, args))?)?;
    string.raw_set("split", lua.create_function(split)?)?;

    let table: Table = globals.raw_get("table")?;
    let sort: Function = table.raw_get("sort")?;
    let sort = lua
        .load(
            "local sort = ... \
             local function less(a, b) return a < b end \
             return function(t, lt) \
                 if lt == nil then return sort(t, less) end \
                 return sort(t, function(a, b) return lt(a, b) end) \
             end",
        )
        .set_name("=table.sort")
        .call::<Function>(sort)?;
    table.raw_set("sort", sort)
}

/// `string.find(s, needle [, init [, plain]])`: a plain needle is found in linear time; a
/// pattern (or anything unusual) goes to Luau's own `find`.
fn plain_find(find: &Function, args: MultiValue) -> mlua::Result<MultiValue> {
    let (Some(Value::String(s)), Some(Value::String(needle))) = (args.front(), args.get(1)) else {
        return find.call(args);
    };
    let init = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(Value::Integer(i)) => *i,
        Some(Value::Number(n)) if n.fract() == 0.0 && n.abs() < 1e15 => *n as i64,
        Some(_) => return find.call(args),
    };
    let plain = args.get(3).is_some_and(|v| !matches!(v, Value::Nil | Value::Boolean(false)));
    let (s, needle) = (s.as_bytes(), needle.as_bytes());
    if !plain && needle.iter().any(|b| SPECIALS.contains(b)) {
        return find.call(args);
    }
    let len = s.len() as i64;
    // Luau's rules: a negative start counts from the end; past the end + 1 finds nothing.
    let init = if init < 0 { (init + len + 1).max(1) } else { init.max(1) };
    if init > len + 1 {
        return Ok(MultiValue::from_iter([Value::Nil]));
    }
    let from = (init - 1) as usize;
    Ok(match memmem::find(&s[from..], &needle) {
        Some(at) => {
            let start = (from + at) as i64 + 1;
            MultiValue::from_iter([Value::Integer(start), Value::Integer(start + needle.len() as i64 - 1)])
        }
        None => MultiValue::from_iter([Value::Nil]),
    })
}

/// `string.split(s [, separator])`, separator `","` by default, as Luau splits: an empty
/// separator makes one piece per byte and a last empty one.
fn split(lua: &Lua, (s, separator): (LuaString, Option<LuaString>)) -> mlua::Result<Table> {
    let s = s.as_bytes();
    // Read in place: the separator may be as long as the string.
    let custom = separator.as_ref().map(LuaString::as_bytes);
    let separator: &[u8] = custom.as_deref().unwrap_or(b",");
    let pieces = lua.create_table()?;
    // The pieces are Lua strings, counted by its allocator; the budget only keeps the clock.
    let mut budget = Budget::of(lua);
    let mut push = |piece: &[u8]| -> mlua::Result<()> {
        budget.charge(0)?;
        pieces.raw_set(pieces.raw_len() + 1, lua.create_string(piece)?)
    };
    if separator.is_empty() {
        for i in 0..s.len() {
            push(&s[i..i + 1])?;
        }
        push(b"")?;
        return Ok(pieces);
    }
    let mut start = 0;
    for at in memmem::find_iter(&s, separator) {
        if at >= start {
            push(&s[start..at])?;
            start = at + separator.len();
        }
    }
    push(&s[start..])?;
    Ok(pieces)
}
