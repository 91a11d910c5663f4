// The internal contract of a point model: fit once, then forecast from many origins (for backtests).

/**
 * A point model sees a gap-filled series `y`. `fit` may use only y[0..fitEnd); `forecastFrom`
 * returns, for every origin o (the index of the first target), the forecasts of y[o..o+h) that
 * use y[0..o) only. One pass of the model's filter serves every origin, which is what makes a
 * rolling-origin backtest over hundreds of origins cheap.
 */
export interface PointModel {
  readonly name: string;
  fit(y: Float64Array, fitEnd: number, seasons: readonly number[]): void;
  forecastFrom(y: Float64Array, origins: readonly number[], h: number): Float64Array[];
}
