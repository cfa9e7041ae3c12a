/**
 * The browser's offer to install the app. Chromium fires `beforeinstallprompt` once the page is
 * installable (and not installed), possibly before any component is mounted, and the shell is
 * mounted twice (before and after the mesh joins): so the offer is kept here (one made before the
 * app's modules ran is taken from the inline script in app.html) for as long as the page lives.
 */
interface InstallPromptEvent extends Event {
  prompt(): Promise<unknown>
  userChoice: Promise<{ outcome: 'accepted' | 'dismissed' }>
}

class InstallPrompt {
  #offer = $state.raw<InstallPromptEvent | undefined>()

  constructor() {
    if (typeof window === 'undefined') return
    // An offer made before this module loaded was kept by the inline script in app.html.
    const early = window as { __zsInstallOffer?: InstallPromptEvent }
    this.#offer = early.__zsInstallOffer
    window.addEventListener('beforeinstallprompt', (e) => {
      // Keep the browser's own mini-infobar away: the Install button is the offer.
      e.preventDefault()
      this.#offer = e as InstallPromptEvent
    })
    window.addEventListener('appinstalled', () => {
      this.#offer = undefined
      early.__zsInstallOffer = undefined
    })
  }

  /** True while the browser allows installing. */
  get available(): boolean {
    return this.#offer != null
  }

  /** Show the browser's install prompt; resolves with the user's choice. */
  async install(): Promise<'accepted' | 'dismissed' | undefined> {
    const e = this.#offer
    if (e == null) return undefined
    // An offer can prompt once: the browser fires a new one if the user dismisses it.
    this.#offer = undefined
    ;(window as { __zsInstallOffer?: InstallPromptEvent }).__zsInstallOffer = undefined
    await e.prompt()
    return (await e.userChoice).outcome
  }
}

export const installPrompt = new InstallPrompt()
