#!/usr/bin/env python3
"""Lists the Rust functions longer than N lines (default 150) under a directory:
`hack/long-functions.py src [N]`. A brace-matching scan that skips strings, chars and
comments well enough for this code base; exits 1 when it lists any."""
import re, sys, pathlib
N = int(sys.argv[2]) if len(sys.argv) > 2 else 150
fn_re = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"C"\s+)?fn\s+(\w+)')
def strip(line, state):
    out=[]; i=0
    while i < len(line):
        c=line[i]
        if state['block']:
            if line.startswith('*/', i): state['block']=False; i+=2; continue
            i+=1; continue
        if state['str']:
            if c=='\\': i+=2; continue
            if c=='"': state['str']=False
            i+=1; continue
        if line.startswith('//', i): break
        if line.startswith('/*', i): state['block']=True; i+=2; continue
        m=re.match(r'r(#*)"', line[i:])
        if m and (i==0 or not line[i-1].isalnum()):
            hashes=m.group(1); end='"'+hashes
            j=line.find(end, i+len(m.group(0)))
            if j<0: state['raw']=end; return ''.join(out)
            i=j+len(end); continue
        if c=='"': state['str']=True; i+=1; continue
        if c=="'" :
            m=re.match(r"'(\\.|[^\\'])'", line[i:])
            if m: i+=len(m.group(0)); continue
        out.append(c); i+=1
    return ''.join(out)
found = False
for path in sorted(pathlib.Path(sys.argv[1]).rglob('*.rs')):
    lines=path.read_text().split('\n')
    state={'block':False,'str':False,'raw':None}
    stack=[]  # (name, start, depth)
    depth=0; pending=None
    for no,line in enumerate(lines,1):
        if state['raw']:
            j=line.find(state['raw'])
            if j<0: continue
            line=line[j+len(state['raw']):]; state['raw']=None
        m=fn_re.match(line)
        if m and not state['str'] and not state['block']: pending=(m.group(7),no)
        code=strip(line,state)
        for ch in code:
            if ch=='{':
                depth+=1
                if pending: stack.append((pending[0],pending[1],depth)); pending=None
            elif ch=='}':
                if stack and stack[-1][2]==depth:
                    name,start,_=stack.pop(); n=no-start+1
                    if n>N: print(f"{n:5} {path}:{start} {name}"); found = True
                depth-=1
            elif ch==';' and pending: pending=None
sys.exit(1 if found else 0)
