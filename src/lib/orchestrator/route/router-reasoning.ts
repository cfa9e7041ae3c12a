/** The one-sentence reasoning of a routing decision. */
import type { ScoredRoute } from './router-types.ts'

/** `12D3KooW…ab`-style short form of a peer id. */
export function shortPeer(id: string): string {
  return id.length <= 12 ? id : `${id.slice(0, 4)}…${id.slice(-2)}`
}

function num(x: number, digits = 2): string {
  return String(Number(x.toFixed(digits)))
}

function rtt(r: ScoredRoute): string {
  return r.peer.rttMs === undefined ? 'an unknown round trip' : `${num(r.peer.rttMs, 1)} ms round trip`
}

function rep(r: ScoredRoute): string {
  return r.reputation === undefined ? 'no reputation yet' : `reputation ${num(r.reputation, 1)}`
}

const LABELS = ['cost', 'quality', 'speed', 'region', 'reputation', 'load', 'specialization'] as const

/** Say in one sentence why `winner` won under `strategy`. */
export function reasoningFor(strategy: string, w: ScoredRoute, eligible: number, rr?: { turn: number; of: number }): string {
  const head = `Chose ${w.agent.name}@${w.agent.version} on peer ${shortPeer(w.peer.id)} because`
  const price = `${num(w.agent.price, 4)} credits`
  switch (strategy) {
    case 'cost':
      return `${head} it is the cheapest eligible (${price}) with ${rep(w)}`
    case 'quality':
      return `${head} it has the highest quality of ${eligible} eligible (${num(w.criteria.quality)}) at ${price}`
    case 'speed':
      return `${head} that peer answers fastest (${rtt(w)}) of those eligible`
    case 'specialist':
      return `${head} it is the most specialised eligible agent (${w.agent.capabilities.length} ${w.agent.capabilities.length === 1 ? 'capability' : 'capabilities'}) with quality ${num(w.criteria.quality)}`
    case 'generalist':
      return `${head} it is the broadest eligible agent (${w.agent.capabilities.length} capabilities) with quality ${num(w.criteria.quality)}`
    case 'geographic':
      return w.criteria.region === 1
        ? `${head} the peer is in a preferred region (${w.peer.region ?? '?'}) at ${rtt(w)}`
        : `${head} no eligible peer is in a preferred region and this one is closest (${rtt(w)})`
    case 'load-balanced':
      return `${head} that peer has the most free workers (${w.freeSeen ?? w.peer.freeWorkers}${w.freeSeen !== undefined && w.freeSeen < w.peer.freeWorkers ? ` seen, ${w.peer.freeWorkers} said` : ''}) of those eligible`
    case 'round-robin':
      return `${head} it is next in round-robin order (turn ${rr?.turn ?? 1} of ${rr?.of ?? eligible} eligible agents)`
    case 'custom':
      return `${head} it has the highest custom score (${num(w.score, 3)}) of ${eligible} eligible`
    default: {
      const best = LABELS.filter((l) => l !== 'load' && l !== 'specialization')
        .map((l) => [l, w.criteria[l]] as const)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 2)
        .map(([l, v]) => `${l} ${num(v)}`)
      return `${head} it has the best balanced score (${num(w.score, 3)}) of ${eligible} eligible, strongest on ${best.join(' and ')}`
    }
  }
}
