// The live plot of the training page: per-step loss (left axis), running training accuracy and
// per-epoch test accuracy (right axis, 0–100%), redrawn whole on a 2D canvas.

export interface PlotData { loss: number[]; accuracy: number[]; testAccuracy: { step: number; value: number }[]; totalSteps: number }

export function drawPlot(canvas: HTMLCanvasElement, d: PlotData): void {
  const ctx = canvas.getContext('2d')!;
  const { width, height } = canvas;
  const left = 48, right = 48, top = 12, bottom = 28;
  const w = width - left - right, h = height - top - bottom;
  ctx.clearRect(0, 0, width, height);
  ctx.font = '12px system-ui, sans-serif';
  ctx.strokeStyle = '#d9dde8';
  ctx.strokeRect(left, top, w, h);
  const maxLoss = Math.max(0.5, ...d.loss.slice(Math.min(5, d.loss.length - 1)).filter(Number.isFinite));
  const x = (step: number) => left + (w * step) / Math.max(1, d.totalSteps);
  const yLoss = (v: number) => top + h - (h * Math.min(v, maxLoss)) / maxLoss;
  const yAcc = (v: number) => top + h - h * v;
  ctx.fillStyle = '#5b6475';
  for (let i = 0; i <= 4; i++) {
    const y = top + (h * i) / 4;
    ctx.fillText((maxLoss * (1 - i / 4)).toFixed(2), 4, y + 4);
    ctx.fillText(`${100 - 25 * i}%`, left + w + 6, y + 4);
  }
  ctx.fillText('step', left + w / 2 - 12, height - 8);
  const line = (values: number[], y: (v: number) => number, colour: string) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    values.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i + 1), y(v)) : ctx.lineTo(x(i + 1), y(v))));
    ctx.stroke();
  };
  line(d.loss, yLoss, '#2f6fde');
  line(d.accuracy, yAcc, '#1f9d55');
  ctx.fillStyle = '#11693a';
  for (const t of d.testAccuracy) {
    ctx.beginPath();
    ctx.arc(x(t.step), yAcc(t.value), 4, 0, 2 * Math.PI);
    ctx.fill();
  }
}
