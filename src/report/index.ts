export { reportLines, ReportTotals, ReportError, convertExact, dayOf, KEY_COLUMNS, REPORT_BREAKDOWNS, NO_FEATURE_KEY } from './report.js';
export type { ReportBy, ReportLine, ReportLedger, ReportQuery, ReportModelRow, ReportCall } from './report.js';
export { parsePeriodLabel, periodLabel, resolvePeriod, periodStatus, PeriodLabelError, MIN_PERIOD_YEAR } from './period.js';
export type { PeriodCalendar } from './period.js';
export { writeReport, csvCell, REPORT_FORMATS } from './write.js';
export type { ReportFormat, ReportHeader, ReportSink } from './write.js';
export { calendarOf, displayRate } from './calendar.js';
export { planReprice, currentCosts, parseRepriceDate, repriceQuery, repricePlanJson, RepriceInputError, RepriceTooLargeError, MAX_API_REPRICE_USERS } from './reprice.js';
export type { RepricePlan, RepriceQuery, RepriceLedger, RepricePricing } from './reprice.js';
