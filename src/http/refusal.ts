/** The JSON body every refusal of a connection carries, whoever refuses it: its status and why. */
export const refusalBody = (status: number, reason: string): string => JSON.stringify({ code: status, message: reason });
