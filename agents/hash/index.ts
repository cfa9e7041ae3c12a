// hash (json-v1): SHA-256 (FIPS 180-4) and CRC-32 (IEEE 802.3, as in zlib) of the UTF-8 bytes of a JSON string.
import { inputText, respond } from "../lib/json-v1"
export { alloc } from "../lib/json-v1"
import { readJsonString } from "../lib/json"

const K: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
]

function hex32(v: u32): string {
  const h = v.toString(16)
  return "00000000".substring(0, 8 - h.length) + h
}

function sha256(data: Uint8Array): string {
  const len = data.length
  const padded = ((len + 9 + 63) >> 6) << 6
  const m = new Uint8Array(padded)
  m.set(data)
  m[len] = 0x80
  const bits: u64 = <u64>len * 8
  for (let i = 0; i < 8; i++) m[padded - 1 - i] = <u8>(bits >> (<u64>i * 8))
  let h0: u32 = 0x6a09e667, h1: u32 = 0xbb67ae85, h2: u32 = 0x3c6ef372, h3: u32 = 0xa54ff53a
  let h4: u32 = 0x510e527f, h5: u32 = 0x9b05688c, h6: u32 = 0x1f83d9ab, h7: u32 = 0x5be0cd19
  const w = new StaticArray<u32>(64)
  for (let off = 0; off < padded; off += 64) {
    for (let t = 0; t < 16; t++) {
      const o = off + t * 4
      w[t] = (<u32>m[o] << 24) | (<u32>m[o + 1] << 16) | (<u32>m[o + 2] << 8) | <u32>m[o + 3]
    }
    for (let t = 16; t < 64; t++) {
      const s0 = rotr<u32>(w[t - 15], 7) ^ rotr<u32>(w[t - 15], 18) ^ (w[t - 15] >>> 3)
      const s1 = rotr<u32>(w[t - 2], 17) ^ rotr<u32>(w[t - 2], 19) ^ (w[t - 2] >>> 10)
      w[t] = w[t - 16] + s0 + w[t - 7] + s1
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7
    for (let t = 0; t < 64; t++) {
      const S1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25)
      const ch = (e & f) ^ (~e & g)
      const t1 = h + S1 + ch + K[t] + w[t]
      const S0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22)
      const maj = (a & b) ^ (a & c) ^ (b & c)
      const t2 = S0 + maj
      h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2
    }
    h0 += a; h1 += b; h2 += c; h3 += d; h4 += e; h5 += f; h6 += g; h7 += h
  }
  return hex32(h0) + hex32(h1) + hex32(h2) + hex32(h3) + hex32(h4) + hex32(h5) + hex32(h6) + hex32(h7)
}

function crc32(data: Uint8Array): u32 {
  let crc: u32 = 0xffffffff
  for (let i = 0; i < data.length; i++) {
    crc ^= <u32>data[i]
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & (0 - (crc & 1)))
  }
  return ~crc
}

export function run(ptr: usize, len: i32): u64 {
  const text = readJsonString(inputText(ptr, len))
  if (text === null) abort("the input must be a JSON string")
  const bytes = Uint8Array.wrap(String.UTF8.encode(text!))
  return respond("{\"sha256\":\"" + sha256(bytes) + "\",\"crc32\":\"" + hex32(crc32(bytes)) + "\",\"bytes\":" + bytes.length.toString() + "}")
}
