local st = obj.status
if st ~= nil and st.phase ~= nil then
  if st.phase == "Failed" then
    hs.status = "Degraded"
  elseif st.phase == "Pending" or st.phase == "Engaging" or st.phase == "Restoring" then
    if hs.status == "Healthy" then
      hs.status = "Progressing"
    end
  end
  local touched = ""
  if st.touched ~= nil and st.touched.namespaces ~= nil then
    touched = " in " .. st.touched.namespaces .. " namespaces"
  end
  hs.message = "Break glass " .. st.phase .. touched .. " (reason: " .. (obj.spec.reason or "") .. "). " .. hs.message
end
return hs
