// The pgtide version string (kept in step with package.json by hand at release time).
export const PGTIDE_VERSION = '0.1.0';
