/**
 * The Web Worker that runs WebLLM (the only place the ~6 MB engine is loaded
 * eagerly). The page talks to it through `CreateWebWorkerMLCEngine`.
 */
import { WebWorkerMLCEngineHandler } from '@mlc-ai/web-llm'

const handler = new WebWorkerMLCEngineHandler()
self.onmessage = (msg: MessageEvent) => { handler.onmessage(msg) }
