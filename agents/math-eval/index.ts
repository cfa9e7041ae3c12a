// math-eval (json-v1): evaluates an arithmetic expression given as a JSON string.
// Grammar (recursive descent): + − * / % ^ (right-assoc), unary −, parentheses,
// constants pi and e, functions sqrt abs sin cos tan asin acos atan ln log log2 exp floor ceil round min max pow.
import { inputText, respond } from "../lib/json-v1"
export { alloc } from "../lib/json-v1"
import { readJsonString, quote } from "../lib/json"

let src = ""
let pos = 0

function peek(): i32 {
  while (pos < src.length && (src.charCodeAt(pos) == 32 || src.charCodeAt(pos) == 9)) pos++
  return pos < src.length ? src.charCodeAt(pos) : -1
}

function fail(msg: string): void {
  abort(msg + " at position " + pos.toString())
}

function expect(c: i32): void {
  if (peek() != c) fail("expected '" + String.fromCharCode(c) + "'")
  pos++
}

function expr(): f64 {
  let v = term()
  while (true) {
    const c = peek()
    if (c == 43) { pos++; v += term() }
    else if (c == 45) { pos++; v -= term() }
    else return v
  }
}

function term(): f64 {
  let v = unary()
  while (true) {
    const c = peek()
    if (c == 42) { pos++; v *= unary() }
    else if (c == 47) { pos++; const d = unary(); if (d == 0) fail("division by zero"); v /= d }
    else if (c == 37) { pos++; const d = unary(); if (d == 0) fail("division by zero"); v %= d }
    else return v
  }
}

function unary(): f64 {
  const c = peek()
  if (c == 45) { pos++; return -unary() }
  if (c == 43) { pos++; return unary() }
  return power()
}

function power(): f64 {
  const base = atom()
  if (peek() == 94) { pos++; return Math.pow(base, unary()) }
  return base
}

function isAlpha(c: i32): bool { return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 }
function isDigit(c: i32): bool { return c >= 48 && c <= 57 }

function call(name: string, args: f64[]): f64 {
  const one = args.length == 1
  const a = args.length > 0 ? args[0] : 0
  if (name == "min" || name == "max") {
    if (args.length == 0) fail(name + "() needs at least one argument")
    let r = args[0]
    for (let i = 1; i < args.length; i++) r = name == "min" ? Math.min(r, args[i]) : Math.max(r, args[i])
    return r
  }
  if (name == "pow") { if (args.length != 2) fail("pow() takes two arguments"); return Math.pow(args[0], args[1]) }
  if (!one) fail(name + "() takes one argument")
  if (name == "sqrt") { if (a < 0) fail("sqrt of a negative number"); return Math.sqrt(a) }
  if (name == "abs") return Math.abs(a)
  if (name == "sin") return Math.sin(a)
  if (name == "cos") return Math.cos(a)
  if (name == "tan") return Math.tan(a)
  if (name == "asin") return Math.asin(a)
  if (name == "acos") return Math.acos(a)
  if (name == "atan") return Math.atan(a)
  if (name == "ln") { if (a <= 0) fail("ln of a non-positive number"); return Math.log(a) }
  if (name == "log") { if (a <= 0) fail("log of a non-positive number"); return Math.log10(a) }
  if (name == "log2") { if (a <= 0) fail("log2 of a non-positive number"); return Math.log2(a) }
  if (name == "exp") return Math.exp(a)
  if (name == "floor") return Math.floor(a)
  if (name == "ceil") return Math.ceil(a)
  if (name == "round") return Math.round(a)
  fail("unknown function '" + name + "'")
  return 0
}

function atom(): f64 {
  const c = peek()
  if (c == 40) { pos++; const v = expr(); expect(41); return v }
  if (isDigit(c) || c == 46) {
    const start = pos
    while (pos < src.length && (isDigit(src.charCodeAt(pos)) || src.charCodeAt(pos) == 46)) pos++
    if (pos < src.length && (src.charCodeAt(pos) == 101 || src.charCodeAt(pos) == 69)) {
      let k = pos + 1
      if (k < src.length && (src.charCodeAt(k) == 43 || src.charCodeAt(k) == 45)) k++
      if (k < src.length && isDigit(src.charCodeAt(k))) { pos = k; while (pos < src.length && isDigit(src.charCodeAt(pos))) pos++ }
    }
    const text = src.substring(start, pos)
    if (text.indexOf(".") != text.lastIndexOf(".")) fail("malformed number '" + text + "'")
    return parseFloat(text)
  }
  if (isAlpha(c)) {
    const start = pos
    while (pos < src.length && (isAlpha(src.charCodeAt(pos)) || isDigit(src.charCodeAt(pos)))) pos++
    const name = src.substring(start, pos).toLowerCase()
    if (peek() == 40) {
      pos++
      const args = new Array<f64>()
      if (peek() != 41) {
        args.push(expr())
        while (peek() == 44) { pos++; args.push(expr()) }
      }
      expect(41)
      return call(name, args)
    }
    if (name == "pi") return Math.PI
    if (name == "e") return Math.E
    fail("unknown name '" + name + "'")
  }
  if (c < 0) fail("unexpected end of expression")
  fail("unexpected '" + String.fromCharCode(c) + "'")
  return 0
}

function fmt(v: f64): string {
  if (!isFinite(v)) abort("the result is not a finite number")
  const r = Math.round(v * 1e12) / 1e12
  if (r == Math.floor(r) && Math.abs(r) < 1e15) return (<i64>r).toString()
  return r.toString()
}

export function run(ptr: usize, len: i32): u64 {
  const text = readJsonString(inputText(ptr, len))
  if (text === null) abort("the input must be a JSON string holding an expression")
  src = text!
  pos = 0
  if (peek() < 0) abort("the expression is empty")
  const v = expr()
  if (peek() >= 0) fail("unexpected '" + String.fromCharCode(peek()) + "'")
  return respond("{\"expression\":" + quote(src) + ",\"value\":" + fmt(v) + "}")
}
