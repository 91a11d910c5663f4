// ForecastProvider: the small interface the planner's callers (autopilot, simulator) get forecasts through.
//
// The predictor area implements it for real (seasonal naive, Holt-Winters, LSTM, conformal
// intervals); baseline-forecast.ts is a self-contained seasonal-naive + conformal stand-in so the
// simulator and `pgtide simulate` work without it. The planner itself never calls a provider: it
// takes finished forecasts as input, which keeps it pure.
import type { PartitionForecast } from './types.js';

export interface ForecastRequest {
  partitionId: number;
  lo: bigint;
  hi: bigint;
  nowMs: number;
  stepSeconds: number;
  horizonSteps: number;
}

/** An announced event (campaign, launch): a load multiplier on a hash range for a time window. */
export interface AnnouncedEvent {
  name: string;
  startMs: number;
  endMs: number;
  lo: bigint;
  hi: bigint;
  /** Expected load multiplier while it runs (what the organizer announced or past events taught). */
  multiplier: number;
}

export interface ForecastProvider {
  readonly name: string;
  forecast(req: ForecastRequest): PartitionForecast | undefined;
}

/** Load history the baseline provider reads: one value per tick for any hash range, past only. */
export interface LoadHistory {
  startMs: number;
  tickSeconds: number;
  /** Ticks [0, visibleTicks(nowMs)) may be read at nowMs. */
  visibleTicks(nowMs: number): number;
  /** An accessor for one hash range (built once, then read per tick: callers read many ticks). */
  series(lo: bigint, hi: bigint): (tick: number) => number;
  rangeBytes(lo: bigint, hi: bigint): number;
}
