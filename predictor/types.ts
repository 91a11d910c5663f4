// Public value types of the predictor: series in, forecasts out, and the Forecaster interface.

/** A regular time series; `values[i]` covers [start + i*stepMs, start + (i+1)*stepMs). null = missing. */
export interface Series {
  start: Date | number;
  stepMs: number;
  values: (number | null)[];
}

/** One horizon step of a forecast. `t` is the interval start in ms since the epoch. */
export interface ForecastStep {
  t: number;
  mean: number;
  /** Keyed by the level as written by `quantileKey` ("0.1", "0.5", "0.9", "0.99"). */
  quantiles: Record<string, number>;
}

export interface Forecast {
  steps: ForecastStep[];
  /** Name of the model that produced the numbers ("ensemble(hw,lstm)", "naive-168", "seed", …). */
  model: string;
  /** Why the predictor did what it did: fallbacks, detected seasons, learned event multipliers. */
  notes: string[];
  /** Point forecasts of every model that was run (events applied), for diagnostics and backtests. */
  components?: Record<string, number[]>;
}

/** What a forecaster may know besides the values. */
export interface FitContext {
  /** Season lengths in steps; detected from the data when absent. */
  seasons?: number[];
  /** Seed for anything random (LSTM sampling and initialization). */
  seed?: number;
}

/** A per-series model: fit once, then forecast h steps after the last value with quantiles. */
export interface Forecaster {
  readonly name: string;
  fit(series: Series, ctx?: FitContext): void;
  forecast(h: number, quantiles?: number[]): Forecast;
}

/** Default quantile levels: p10…p99 plus the 95 % interval's edges. */
export const DEFAULT_QUANTILES: readonly number[] = [0.1, 0.5, 0.9, 0.99];

/** Canonical key of a quantile level: shortest decimal, so 0.1 → "0.1", 0.975 → "0.975". */
export function quantileKey(p: number): string {
  return String(Number(p.toPrecision(6)));
}

export function startMs(s: Series): number {
  return typeof s.start === 'number' ? s.start : s.start.getTime();
}
