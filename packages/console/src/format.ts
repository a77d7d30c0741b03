/** Display helpers for the console's views. */

// Made once: `toLocaleTimeString(locale, options)` builds a formatter per call, which was the
// largest single cost of opening a long conversation (one call per bubble rendered).
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** `12:04` for today, `Mar 3, 12:04` otherwise; empty for an unparsable timestamp. */
export function formatTime(iso: string, now: Date = new Date()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const time = timeFormat.format(date);
  if (date.toDateString() === now.toDateString()) return time;
  return `${dayFormat.format(date)}, ${time}`;
}

/** Minor units to a currency string: `1250, 'USD'` → `$12.50`. Unknown currencies show the code. */
export function formatAmount(amount: number, currency: string): string {
  try {
    const digits =
      new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ??
      2;
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(amount / 10 ** digits);
  } catch {
    return `${(amount / 100).toFixed(2)} ${currency}`;
  }
}

/** First 8 characters of an id, for compact display. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** The message of an error of any kind, for the banner. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A scope's sync status in words: `pending` means it waits for the connection. */
export function scopeStatusLabel(status: string): string {
  switch (status) {
    case 'live':
      return 'live';
    case 'pending':
      return 'waiting';
    case 'bootstrapping':
      return 'loading';
    case 'error':
      return 'refused';
    default:
      return status;
  }
}
