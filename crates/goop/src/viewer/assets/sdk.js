// goop JS SDK: served at /_goop/sdk.js on every peer's origin. It talks to that peer only,
// through the visitor's own goop peer (the viewer), which calls the site's peer over
// /goop/data/1.0.0 as the visitor's peer ID.
(function () {
  "use strict";
  var info = /*GOOP_INFO*/null;

  function request(body) {
    return fetch("/_goop/data", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.text().then(function (text) {
        var answer;
        try {
          answer = JSON.parse(text);
        } catch (e) {
          throw new Error(text || "HTTP " + response.status);
        }
        if (!answer || answer.ok !== true) {
          throw new Error((answer && answer.error) || "request failed");
        }
        return answer;
      });
    });
  }

  // Copies the options a request may carry; anything else stays out (the peer refuses
  // unknown fields rather than guess).
  var QUERY = ["columns", "fields", "where", "args", "order", "limit", "offset"];
  function options(body, o, names) {
    (names || QUERY).forEach(function (k) {
      if (o && o[k] !== undefined) body[k] = o[k];
    });
    return body;
  }
  function dataOf(a) { return a.data; }

  // A column name as SQL: quoted, so getBy("order", …) works and cannot splice anything.
  function column(name) {
    return '"' + String(name).replace(/"/g, '""') + '"';
  }

  var data = {
    /** Calls the peer's data function `fn` (site/lua/functions/fn.lua) with `params`. */
    call: function (fn, params) {
      return request({ op: "lua-call", function: fn, params: params === undefined ? {} : params })
        .then(function (a) { return a.result; });
    },
    /** `api("blog")("save", {title})` calls blog with `{action: "save", title}` (goop.route). */
    api: function (fn) {
      return function (action, params) {
        return data.call(fn, Object.assign({ action: action }, params || {}));
      };
    },
    /** The peer's data functions: [{name, description}]. */
    functions: function () {
      return request({ op: "lua-list" }).then(function (a) { return a.functions; });
    },
    /** The tables the peer lets this visitor see. */
    tables: function () {
      return request({ op: "tables" }).then(function (a) { return a.tables; });
    },
    describe: function (table) {
      return request({ op: "describe", table: table }).then(function (a) { return a.columns; });
    },
    /** Every table this visitor may use, described as goop.orm does: {name: {columns, access, …}}. */
    schemas: function () {
      return request({ op: "orm-schema" }).then(dataOf);
    },
    /** This visitor's role and permissions on `table`: {role, permissions: {read, insert, update, delete}}. */
    role: function (table) {
      return request({ op: "role", table: table }).then(dataOf);
    },

    // Reads. `opts`: where, args, order, limit, offset, fields.
    /** Rows of `table`. */
    find: function (table, opts) {
      return request(options({ op: "query", table: table }, opts)).then(function (a) { return a.rows; });
    },
    /** The first row, or null. */
    findOne: function (table, opts) {
      return request(options({ op: "query-one", table: table }, opts)).then(dataOf);
    },
    /** The row with `_id` = id, or null. */
    get: function (table, id) {
      return data.findOne(table, { where: "_id = ?", args: [id] });
    },
    /** The first row whose `col` equals `value`, or null. */
    getBy: function (table, col, value) {
      return data.findOne(table, { where: column(col) + " = ?", args: [value] });
    },
    /** At most `limit` rows of `table`; with no table, the peer's data functions (as `functions`). */
    list: function (table, limit) {
      if (table === undefined) return data.functions();
      return data.find(table, limit ? { limit: limit } : {});
    },
    /** One column's values. */
    pluck: function (table, col, opts) {
      return request(options({ op: "pluck", table: table, key_col: col }, opts)).then(dataOf);
    },
    /** One column's distinct values. */
    distinct: function (table, col, opts) {
      return request(options({ op: "distinct", table: table, key_col: col }, opts)).then(dataOf);
    },
    exists: function (table, opts) {
      return request(options({ op: "exists", table: table }, opts)).then(function (a) { return a.data.exists; });
    },
    count: function (table, opts) {
      return request(options({ op: "count", table: table }, opts)).then(function (a) { return a.data.count; });
    },
    /** Rows of `expr` ("player, SUM(score) AS total"); opts also take group_by. */
    aggregate: function (table, expr, opts) {
      var body = options({ op: "aggregate", table: table, expr: expr }, opts);
      return request(options(body, opts, ["group_by"])).then(dataOf);
    },
    /** Rows of `table`; options: columns, where, args, order, limit, offset. */
    query: function (table, opts) {
      return data.find(table, opts);
    },

    // Writes: the peer stamps `_owner` with this visitor and checks the table's access.
    /** Inserts a row; resolves to its _id. */
    insert: function (table, row) {
      return request({ op: "insert", table: table, data: row }).then(function (a) { return a.id; });
    },
    /**
     * `update(table, id, row)` changes the row with that _id; `update(table, row, where, args)`
     * the rows matching `where`. Resolves to the number changed.
     */
    update: function (table, a, b, args) {
      var body = typeof a === "object" && a !== null
        ? options({ op: "update", table: table, data: a }, { where: b, args: args })
        : { op: "update", table: table, id: a, data: b };
      return request(body).then(function (x) { return x.affected; });
    },
    /** Deletes the row with that _id; resolves to the number deleted (0 or 1). */
    remove: function (table, id) {
      return request({ op: "delete", table: table, id: id }).then(function (a) { return a.affected; });
    },
    /** Deletes the rows matching `where`; resolves to the number deleted. */
    delete: function (table, where, args) {
      return request(options({ op: "delete", table: table }, { where: where, args: args }))
        .then(function (a) { return a.affected; });
    },
    /** Sets `row`'s values on the rows matching opts.where; resolves to the number changed. */
    updateWhere: function (table, row, opts) {
      return request(options({ op: "update-where", table: table, data: row }, opts, ["where", "args"]))
        .then(function (a) { return a.data.affected; });
    },
    deleteWhere: function (table, opts) {
      return request(options({ op: "delete-where", table: table }, opts, ["where", "args"]))
        .then(function (a) { return a.data.affected; });
    },
    /** Inserts `row`, or updates the row whose `keyCol` has its value; resolves to {status, id}. */
    upsert: function (table, keyCol, row) {
      return request({ op: "upsert", table: table, key_col: keyCol, data: row }).then(dataOf);
    },

    /** A handle on one table: the methods above without the table argument, and its description. */
    orm: function (table) {
      return Promise.all([data.schemas(), data.role(table)]).then(function (got) {
        var schema = got[0][table] || { name: table, columns: [], access: {} };
        var can = got[1].permissions || {};
        var handle = {
          name: schema.name || table,
          columns: schema.columns || [],
          access: schema.access || {},
          system_key: !!schema.system_key,
          canInsert: !!can.insert,
          canUpdate: !!can.update,
          canDelete: !!can.delete,
          /** {valid, errors}: required columns present, numbers where the column is numeric. */
          validate: function (row) {
            var errors = [];
            handle.columns.forEach(function (c) {
              var v = row ? row[c.name] : undefined;
              if (c.required && (v === undefined || v === null || v === "")) errors.push(c.name + " is required");
              if (v !== undefined && v !== null && (c.type === "integer" || c.type === "real") && typeof v !== "number") {
                errors.push(c.name + " must be a number");
              }
            });
            return { valid: errors.length === 0, errors: errors };
          },
        };
        ["find", "findOne", "get", "getBy", "list", "pluck", "distinct", "exists", "count", "aggregate",
          "insert", "update", "remove", "updateWhere", "deleteWhere", "upsert"].forEach(function (name) {
          handle[name] = function () {
            return data[name].apply(null, [table].concat(Array.prototype.slice.call(arguments)));
          };
        });
        return Object.freeze(handle);
      });
    },

    /**
     * Settings kept in `table`: a key/value table (columns `key`, `value`) or the table's last
     * row. Resolves to {get(key), set(key, value)} with each known key also readable as a field.
     */
    config: function (table, defaults) {
      var values = Object.assign({}, defaults || {});
      return data.schemas().then(function (schemas) {
        var names = ((schemas[table] || {}).columns || []).map(function (c) { return c.name; });
        var keyValue = names.indexOf("key") >= 0 && names.indexOf("value") >= 0;
        var load = keyValue
          ? data.find(table, { fields: ["key", "value"], order: "_id", limit: 1000 }).then(function (rows) {
            // The oldest row of a key is its value, as in goop.config: the row `set` updates.
            var seen = {};
            rows.forEach(function (r) {
              if (r.key && !seen[r.key]) {
                seen[r.key] = true;
                values[r.key] = r.value;
              }
            });
          })
          : data.find(table, { order: "_id DESC", limit: 1 }).then(function (rows) {
            if (rows[0]) names.forEach(function (n) { if (rows[0][n] != null) values[n] = rows[0][n]; });
          });
        return load.then(function () {
          var cfg = {
            get: function (key) { return values[key]; },
            set: function (key, value) {
              var change = {};
              change[key] = value;
              var write = keyValue
                ? data.upsert(table, "key", { key: key, value: value })
                : data.find(table, { order: "_id DESC", limit: 1, fields: ["_id"] }).then(function (rows) {
                  return rows[0] ? data.update(table, rows[0]._id, change) : data.insert(table, change);
                });
              return write.then(function () { values[key] = value; });
            },
          };
          Object.keys(values).forEach(function (key) {
            if (key !== "get" && key !== "set") {
              Object.defineProperty(cfg, key, { enumerable: true, get: function () { return values[key]; } });
            }
          });
          return cfg;
        });
      });
    },

    /** Any data-protocol request; resolves to the whole answer. */
    request: request,
  };
  Object.freeze(data);

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  /**
   * Joins group `name` at this page's peer. `onMessage(message)` gets what the peer's scripts
   * send with goop.group.send. options.status(state) hears "connected", "disconnected" (the
   * SDK joins again by itself), "refused" and "left"; options.missed(count) hears that the page
   * fell behind and lost `count` messages (fetch the state again). Returns
   * {ready, send(message), leave(), connected}: `ready` rejects with the peer's reason when it
   * refuses the page.
   */
  function join(name, onMessage, options) {
    var o = options || {};
    var left = false;
    var joinedOnce = false;
    var controller = null;
    var wait = 1000;
    var settle = {};
    var handle = {
      name: name,
      connected: false,
      ready: new Promise(function (resolve, reject) {
        settle.resolve = resolve;
        settle.reject = reject;
      }),
      send: function (message) {
        return post("/_goop/group/send", { group: name, message: message }).then(function (response) {
          return response.json().then(function (answer) {
            if (!answer || answer.ok !== true) throw new Error((answer && answer.error) || "send failed");
          });
        });
      },
      leave: function () {
        left = true;
        if (controller) controller.abort();
        status("left");
      },
    };

    // The page's own callbacks: one that throws is reported like any uncaught error, and
    // neither ends the stream (its next messages would be lost) nor makes the page join again.
    function callback(f, value) {
      try {
        f(value);
      } catch (e) {
        setTimeout(function () {
          throw e;
        });
      }
    }

    function status(state) {
      handle.connected = state === "connected";
      if (o.status) callback(o.status, state);
    }

    function frame(line) {
      if (!line) return;
      var f = JSON.parse(line);
      if (f.type === "joined") {
        joinedOnce = true;
        wait = 1000;
        status("connected");
        settle.resolve(handle);
      } else if (f.type === "message") {
        callback(onMessage, f.message);
      } else if (f.type === "missed" && o.missed) {
        callback(o.missed, f.count);
      }
    }

    function read(reader) {
      var decoder = new TextDecoder();
      var buffered = "";
      function next() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffered += decoder.decode(chunk.value, { stream: true });
          var lines = buffered.split("\n");
          buffered = lines.pop();
          lines.forEach(frame);
          return next();
        });
      }
      return next();
    }

    function again() {
      if (left) return;
      status("disconnected");
      setTimeout(connect, wait);
      wait = Math.min(wait * 2, 10000);
    }

    function connect() {
      if (left) return;
      controller = new AbortController();
      fetch("/_goop/group/join", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ group: name }),
        signal: controller.signal,
      }).then(function (response) {
        if (response.status === 403 || response.status === 400) {
          return response.json().then(function (answer) {
            left = true;
            status("refused");
            var e = new Error((answer && answer.error) || "refused");
            if (!joinedOnce) settle.reject(e);
          });
        }
        if (!response.ok || !response.body) return again();
        return read(response.body.getReader()).then(again, again);
      }, again);
    }

    connect();
    return handle;
  }

  var group = Object.freeze({ join: join });

  // The namespace stays open for a page's own additions (Goop.ui = …); what the SDK puts in
  // it can be neither replaced nor changed.
  var goop = {};
  function fixed(name, value) {
    Object.defineProperty(goop, name, { value: value, enumerable: true, writable: false, configurable: false });
  }
  /** The peer whose browser this is: {id, label}. */
  fixed("self", Object.freeze(info.self));
  /** The peer whose site this is: {id, label}. */
  fixed("peer", Object.freeze(info.peer));
  fixed("data", data);
  /** Live groups at this page's peer: Goop.group.join(name, onMessage, options). */
  fixed("group", group);
  Object.defineProperty(window, "Goop", { value: goop, enumerable: true, writable: false, configurable: false });
  window.goopData = data;
})();
