// Seasonal naive forecasts: repeat the value one season ago (daily, weekly or last value).

import type { PointModel } from './point-model.js';

/**
 * ŷ[o+k] = y[o + k − m·⌈(k+1)/m⌉]: the latest observed value at the same phase of the season.
 * With m = 1 this is the plain naive (last value) forecast. `which` picks the season: 'short' is
 * the shortest detected season (a day), 'long' the longest (a week); with no season, m = 1.
 */
export class SeasonalNaive implements PointModel {
  private m = 1;
  constructor(private readonly which: 'short' | 'long' | number = 'long') {}

  get name(): string {
    return this.m === 1 ? 'naive' : `snaive-${this.m}`;
  }

  get season(): number {
    return this.m;
  }

  fit(_y: Float64Array, fitEnd: number, seasons: readonly number[]): void {
    let m = 1;
    if (typeof this.which === 'number') m = this.which;
    else if (seasons.length > 0) m = this.which === 'short' ? seasons[0]! : seasons[seasons.length - 1]!;
    // A season longer than the history cannot be repeated.
    this.m = m <= fitEnd ? m : 1;
  }

  forecastFrom(y: Float64Array, origins: readonly number[], h: number): Float64Array[] {
    const m = this.m;
    return origins.map((o) => {
      const f = new Float64Array(h);
      for (let k = 0; k < h; k++) {
        const idx = o + k - m * Math.ceil((k + 1) / m);
        f[k] = idx >= 0 ? y[idx]! : y[0] ?? 0;
      }
      return f;
    });
  }
}
