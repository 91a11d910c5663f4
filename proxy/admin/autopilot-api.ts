// What the admin console needs from the autopilot (forecasts, events, plans, restores); the composition root supplies it.
import { AdminError, type AdminContext } from './admin-session.js';
import type { AdminResult } from './result.js';

export interface AutopilotAdmin {
  showForecast(target: string | null, horizon: number | null): Promise<AdminResult>;
  scheduleEvent(text: string): Promise<AdminResult>;
  showEvents(): Promise<AdminResult>;
  setMode(mode: 'off' | 'recommend' | 'auto'): Promise<AdminResult>;
  set(name: string, value: string): Promise<AdminResult>;
  showAutopilot(): Promise<AdminResult>;
  showPlan(): Promise<AdminResult>;
  applyPlan(step: number | null): Promise<AdminResult>;
  runNow(): Promise<AdminResult>;
  restoreTable(text: string): Promise<AdminResult>;
  showOverrides(): Promise<AdminResult>;
}

/** The autopilot of this proxy, or 55000 when the process runs without one. */
export function autopilotOf(ctx: AdminContext): AutopilotAdmin {
  const a = ctx.backend.autopilot;
  if (!a) throw new AdminError('NO_AUTOPILOT', 'this proxy runs without the autopilot (forecasts, plans and restores are unavailable)', { sqlstate: '55000' });
  ctx.backend.member.assertCatalogReachable();
  return a;
}
