#!/bin/bash
# starts gunicorn as the helper does, pinned to core 0; prints the port; pid in gunicorn.pid
cd /tmp/bl && rm -f gunicorn.log
SLOW_APP_DELAY_MS=20 PYTHONDONTWRITEBYTECODE=1 setsid taskset -c 0 /opt/pummel-ci/gunicorn/bin/gunicorn \
  --bind 127.0.0.1:0 --worker-class sync --workers 4 --preload --chdir /tmp/bl --worker-tmp-dir /tmp/bl \
  --error-logfile /tmp/bl/gunicorn.log --log-level info --graceful-timeout 2 slow_app:app </dev/null >/dev/null 2>&1 &
echo $! > gunicorn.pid
for i in $(seq 100); do grep -q "Booting worker" gunicorn.log 2>/dev/null && [ $(grep -c "Booting worker" gunicorn.log) -ge 4 ] && break; sleep 0.1; done
grep -o 'Listening at: http://[0-9.:]*' gunicorn.log | sed 's/.*://'
