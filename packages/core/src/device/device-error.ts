/** An error the user can act on: `message` says what is wrong, `hint` what to do. */
export class DeviceError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(`${message}\n${hint}`);
    this.name = "DeviceError";
  }
}
