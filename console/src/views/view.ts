/** A view of the console: its element, and how to stop its timers when another replaces it. */
export interface View {
  element: HTMLElement;
  stop(): void;
}
