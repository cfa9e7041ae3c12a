// A pure client-side app: every page runs in the browser, where the mesh lives.
export const ssr = false
export const prerender = false
