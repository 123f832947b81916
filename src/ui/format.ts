import { describeHealth, type CheckedService } from '../domain/service-health.js';

/** An element with a class and text: the page builds everything with textContent, never HTML strings. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text) element.textContent = text;
  return element;
}

/** A service's health as a coloured dot whose tooltip gives the verdict; none for a service the registry does not check. */
export function healthDot(service: CheckedService): HTMLElement | undefined {
  if (!service.health) return undefined;
  const dot = el('span', `health-dot health-${service.health.status}`);
  dot.title = `${service.name} ${describeHealth(service.health)}`;
  dot.setAttribute('role', 'img');
  dot.setAttribute('aria-label', `${service.name} ${service.health.status}`);
  return dot;
}
