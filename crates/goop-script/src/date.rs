//! `os.date` with the C `strftime` conversions that scripts written for gopher-lua use.
//!
//! Luau's own `os.date` refuses every conversion outside `aAbBcdHIjmMpSUwWxXyYzZ%`, so `%F`,
//! `%T`, `%e`, `%s` … fail. This one formats through chrono in the C locale. A conversion it
//! does not know is copied as written (`%Q` stays `%Q`), as gopher-lua does. The format is
//! short (at most [`MAX_FORMAT_BYTES`]) and the text made from it is charged to the call's
//! budget like any other host-made text.

use std::io::Write;

use chrono::{DateTime, Datelike, Local, Offset, TimeZone, Timelike, Utc};
use mlua::{Lua, LuaString, Table, Value};

use crate::budget::Budget;

/// Longest format `os.date` accepts, in bytes.
pub const MAX_FORMAT_BYTES: usize = 256;

/// The conversions formatted (C99 plus the common GNU `%k %l %P %s`); others stay as written.
const CONVERSIONS: &[u8] = b"aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ";

/// Largest `|time|` taken, in seconds: far past any calendar chrono can show, so the
/// conversion to whole seconds is exact and the range check below decides.
const MAX_TIME: f64 = 1e17;

/// The `os.date` function.
pub fn function(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_function(|lua, (format, time): (Option<LuaString>, Option<f64>)| date(lua, format, time))
}

/// `os.date([format [, time]])`: `format` defaults to `%c`; a leading `!` means UTC, else the
/// host's local time; `*t` returns a table. A time the calendar cannot show gives nil.
fn date(lua: &Lua, format: Option<LuaString>, time: Option<f64>) -> mlua::Result<Value> {
    let format = format.as_ref().map(|f| f.as_bytes());
    let format: &[u8] = format.as_deref().unwrap_or(b"%c");
    if format.len() > MAX_FORMAT_BYTES {
        return Err(mlua::Error::runtime(format!("os.date: format is longer than {MAX_FORMAT_BYTES} bytes")));
    }
    let at = match time {
        None => Some(Utc::now()),
        Some(t) if t.is_finite() && t.abs() <= MAX_TIME => DateTime::from_timestamp(t.trunc() as i64, 0),
        Some(_) => None,
    };
    let Some(at) = at else { return Ok(Value::Nil) };
    let (utc, format) = match format.strip_prefix(b"!") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    if format == b"*t" {
        return Ok(Value::Table(if utc { fields(lua, &at, false)? } else { local_fields(lua, &at)? }));
    }
    let mut out = Vec::new();
    if utc {
        render(&at, format, &mut out)?;
    } else {
        render(&at.with_timezone(&Local), format, &mut out)?;
    }
    Budget::of(lua).charge(out.len())?;
    Ok(Value::String(lua.create_string(&out)?))
}

/// Writes `format` for `at`: known conversions through chrono, everything else as it is.
fn render<Tz: TimeZone>(at: &DateTime<Tz>, format: &[u8], out: &mut Vec<u8>) -> mlua::Result<()>
where
    Tz::Offset: std::fmt::Display,
{
    let mut bytes = format.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'%' {
            out.push(byte);
            continue;
        }
        match bytes.next() {
            Some(b'%') => out.push(b'%'),
            Some(c) if CONVERSIONS.contains(&c) => {
                let spec = [b'%', c];
                // `c` is ASCII, so `spec` is text.
                let spec = std::str::from_utf8(&spec).map_err(mlua::Error::external)?;
                write!(out, "{}", at.format(spec)).map_err(mlua::Error::external)?;
            }
            Some(other) => out.extend_from_slice(&[b'%', other]),
            None => out.push(b'%'),
        }
    }
    Ok(())
}

/// The `*t` table in local time.
fn local_fields(lua: &Lua, at: &DateTime<Utc>) -> mlua::Result<Table> {
    let local = at.with_timezone(&Local);
    fields(lua, &local, observes_dst(&local))
}

/// `{year, month, day, hour, min, sec, wday, yday, isdst}` as Lua numbers them (Sunday is 1).
fn fields<Tz: TimeZone>(lua: &Lua, at: &DateTime<Tz>, isdst: bool) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 9)?;
    t.raw_set("year", at.year())?;
    t.raw_set("month", at.month())?;
    t.raw_set("day", at.day())?;
    t.raw_set("hour", at.hour())?;
    t.raw_set("min", at.minute())?;
    t.raw_set("sec", at.second())?;
    t.raw_set("wday", at.weekday().number_from_sunday())?;
    t.raw_set("yday", at.ordinal())?;
    t.raw_set("isdst", isdst)?;
    Ok(t)
}

/// Whether `at` is in daylight saving time: its offset is ahead of the smaller of the offsets
/// of January and July of its year (the zone's standard time, in either hemisphere).
fn observes_dst(at: &DateTime<Local>) -> bool {
    let offset_in = |month| {
        Local.with_ymd_and_hms(at.year(), month, 1, 12, 0, 0).earliest().map(|d| d.offset().fix().local_minus_utc())
    };
    match (offset_in(1), offset_in(7)) {
        (Some(january), Some(july)) => at.offset().fix().local_minus_utc() > january.min(july),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(format: &str, time: i64) -> String {
        let mut out = Vec::new();
        let at = DateTime::from_timestamp(time, 0).unwrap();
        render(&at, format.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_the_c_conversions() {
        // 2024-02-29 13:05:09 UTC, a Thursday, day 60 of a leap year.
        let t = 1_709_211_909;
        assert_eq!(utc("%F %T", t), "2024-02-29 13:05:09");
        assert_eq!(utc("%D %R %e|%j|%p|%s|%u|%w", t), "02/29/24 13:05 29|060|PM|1709211909|4|4");
        assert_eq!(utc("%a %A %b %B", t), "Thu Thursday Feb February");
        assert_eq!(utc("%d/%m/%y %Y %H %I %M %S", t), "29/02/24 2024 13 01 05 09");
        assert_eq!(utc("%c|%x|%X", t), "Thu Feb 29 13:05:09 2024|02/29/24|13:05:09");
        assert_eq!(utc("%Z %z %%", t), "UTC +0000 %");
        assert_eq!(utc("%e", 0), " 1");
    }

    #[test]
    fn unknown_conversions_and_a_lone_percent_stay_as_written() {
        assert_eq!(utc("%Q %E %O %5 x%", 0), "%Q %E %O %5 x%");
        assert_eq!(utc("no conversions", 0), "no conversions");
    }
}
